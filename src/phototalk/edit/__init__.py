"""Editing and dubbing real talking videos (VLOGGER's video editing and translation):
close the mouth or the eyes and suppress blinks over time ranges, or re-lip-sync the
speaker to new speech. Only the face region changes."""
from .pipeline import EditResult, TimeRange, dub_video, edit_video

__all__ = ["EditResult", "TimeRange", "dub_video", "edit_video"]
