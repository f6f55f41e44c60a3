"""Data stage: read any supported Amazon format, clean, k-core filter, build item text, split."""
