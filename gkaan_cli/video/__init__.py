"""Video input/output: decoding, clip sampling, clip transforms, H.264 writing."""
