"""A .tflite file's operator list (builtin op name + version), read with TensorFlow's generated flatbuffer schema."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def read_operator_codes(path: str | Path) -> list[tuple[int, int, str | None]]:
    """(builtin_code, version, custom_code) for each operator code of a TFLite model.

    Codes above 127 live only in ``builtin_code`` and older models only fill ``deprecated_builtin_code``,
    so the real code is the larger of the two (what TFLite's own ``GetBuiltinCode`` does).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    buf = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(buf, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            custom = oc.CustomCode()
            codes.append((max(oc.DeprecatedBuiltinCode(), oc.BuiltinCode()), oc.Version(),
                          custom.decode("utf-8", "replace") if custom is not None else None))
        return codes
    except (struct.error, IndexError, ValueError, TypeError) as exc:  # what flatbuffers raises on garbage
        raise ValueError(f"{path}: not a valid TFLite flatbuffer ({exc})") from exc


def operator_list(path: str | Path) -> list[dict[str, Any]]:
    """``[{"op": "CONV_2D", "version": 3}, ...]`` as stored in the manifest's artifact entries."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [{"op": custom or names.get(code, str(code)), "version": version}
            for code, version, custom in read_operator_codes(path)]
