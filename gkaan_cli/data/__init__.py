"""Datasets: find videos and splits, prepare a frame cache once, read clips from it."""
