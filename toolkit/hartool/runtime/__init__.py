"""Runtime: interpreter backends, ring-buffer windowing, smoothing and the streaming loop (no TensorFlow)."""
