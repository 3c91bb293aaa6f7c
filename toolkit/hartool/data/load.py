"""``load_dataset(spec)``: the one entry point from a dataset spec string to a :class:`Dataset`."""

from __future__ import annotations

from hartool.core.errors import DataError
from hartool.data.csvdir import load_csv_dir
from hartool.data.hapt import load_hapt
from hartool.data.recordings import Dataset
from hartool.data.uci_har import load_uci_har

DATASET_SPECS = ("hapt", "uci-har:PATH", "csv:DIR")


def load_dataset(spec: str = "hapt") -> Dataset:
    """``"hapt"`` | ``"uci-har:PATH"`` | ``"csv:DIR"``; an unknown scheme or a missing path is a DataError."""
    text = str(spec).strip()
    if text.lower() == "hapt":
        return load_hapt()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.strip().lower()
    if sep and scheme in ("uci-har", "csv"):
        if not rest.strip():
            raise DataError(f"dataset '{spec}': missing path after '{scheme}:'")
        return load_uci_har(rest.strip()) if scheme == "uci-har" else load_csv_dir(rest.strip())
    raise DataError(f"unknown dataset '{spec}': use one of {', '.join(DATASET_SPECS)}")
