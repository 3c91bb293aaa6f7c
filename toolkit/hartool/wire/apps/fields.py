"""Named fields, for any other sender: ``{"t": .., "acc_x": .., ...}`` with the model's channel names.

``t`` is optional and in ``--time-unit``; values are in the units the user names (``--acc-unit``,
``--gyro-unit``). A list of such objects on one line is fine (the decoder splits lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hartool.wire.apps.base import RowSchema

__all__ = ["NamedFields"]


class NamedFields(RowSchema):
    """One object per sample whose keys are the model's channel names."""

    name = "fields"

    @classmethod
    def claims(cls, doc: dict[str, Any], channel_names: Sequence[str]) -> bool:
        return any(c in doc for c in channel_names)

    def row(self, doc: dict[str, Any]) -> tuple[Any, np.ndarray] | None:
        try:
            row = np.asarray([float(doc[c]) for c in self.channels.names], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if not np.isfinite(row).all():
            return None
        return doc.get("t"), row
