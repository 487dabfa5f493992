"""Moved to ``phototalk.core.atomic`` (every layer writes files atomically); kept as an alias."""
from ..core.atomic import atomic_path, check_writable, write_error  # noqa: F401
