"""Export: TFLite and ONNX conversion and quantization, isolated in child processes."""
