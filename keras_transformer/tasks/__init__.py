"""End-to-end task runners used by the command line (TensorFlow side)."""
