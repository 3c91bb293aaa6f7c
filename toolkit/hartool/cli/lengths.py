"""The ``--window`` / ``--stride`` option type: seconds (``2.56s``) or samples (``128``).

The value is kept as written and resolved at the dataset's rate once it is loaded.
"""

from __future__ import annotations

from typing import Any

import click

from ..core.errors import DataError


class Length(click.ParamType):
    """``2.56s`` (seconds) or ``128`` (samples); the value is kept as written and resolved once the rate is known."""

    name = "length"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..data.windowing import parse_length

        try:
            parse_length(value)
        except DataError as exc:
            self.fail(str(exc), param, ctx)
        return str(value).strip()


LENGTH = Length()
WINDOW_HELP = "Window length: seconds (2.56s) or samples (128) [default: 2.56s at the dataset's rate]."
STRIDE_HELP = "Hop between evaluation windows: seconds (1.28s) or samples (64) [default: 1.28s]."
