"""The C generator: a full-int8 .tflite read from its flatbuffer and written as C99 kernels bit-exact with TFLite Micro.

`library.export_c` writes the bundle's library; `graph` reads the model, `lower` maps each operator to a C kernel
call with parameters fixed at export (`quant`), `plan` lays activations into one arena, `emit` writes the C.
The kernels themselves are package data in `kernels/`.
"""
