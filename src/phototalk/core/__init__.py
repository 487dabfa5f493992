"""Shared core: the job context (progress, cancellation) and small utilities every layer
may use. Imports nothing of phototalk's stages or front ends."""
