"""Training: Keras architectures, fitting and evaluation (imports TensorFlow lazily)."""
