"""Read a .tflite file's operator codes (builtin op + version) with a minimal flatbuffer reader (stdlib only)."""

from __future__ import annotations

import struct
from pathlib import Path


def _table_field(buf: bytes, table: int, field: int) -> int | None:
    """Absolute position of ``field`` in the flatbuffer table at ``table``, or None when absent (default)."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * field
    if slot >= vt_size:
        return None
    off = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + off if off else None


def read_operator_codes(path: str | Path) -> list[tuple[int, int, str | None]]:
    """(builtin_code, version, custom_code) for each operator code of a TFLite model.

    Model.operator_codes is field 1; OperatorCode fields: 0 deprecated_builtin_code (int8),
    1 custom_code (string), 2 version (int32, default 1), 3 builtin_code (int32). Codes above 127
    live only in builtin_code, so the real code is the larger of the two.
    """
    buf = Path(path).read_bytes()
    try:
        root = struct.unpack_from("<I", buf, 0)[0]
        vec_field = _table_field(buf, root, 1)
        if vec_field is None:
            return []
        vec = vec_field + struct.unpack_from("<I", buf, vec_field)[0]
        count = struct.unpack_from("<I", buf, vec)[0]
        codes = []
        for i in range(count):
            elem = vec + 4 + 4 * i
            table = elem + struct.unpack_from("<I", buf, elem)[0]
            pos = _table_field(buf, table, 0)
            deprecated = struct.unpack_from("<b", buf, pos)[0] if pos else 0
            pos = _table_field(buf, table, 3)
            builtin = struct.unpack_from("<i", buf, pos)[0] if pos else 0
            pos = _table_field(buf, table, 2)
            version = struct.unpack_from("<i", buf, pos)[0] if pos else 1
            pos = _table_field(buf, table, 1)
            custom = None
            if pos:
                s = pos + struct.unpack_from("<I", buf, pos)[0]
                n = struct.unpack_from("<I", buf, s)[0]
                custom = buf[s + 4 : s + 4 + n].decode("utf-8", "replace")
            codes.append((max(deprecated, builtin), version, custom))
        return codes
    except struct.error as exc:
        raise ValueError(f"{path}: not a valid TFLite flatbuffer ({exc})") from exc
