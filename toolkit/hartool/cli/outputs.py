"""Click options for the registered sinks (``--jsonl``, ``--publish``, ``--serve``, ...) and their opening.

The options come from :data:`hartool.runtime.sinks.SINK_TYPES`: a new sink type brings its own options
and summary lines, and nothing here changes. Use::

    @click.command()
    ...
    @output_options
    def stream(..., **outputs_kw):
        fan = open_stream_outputs(bundle, outputs_kw, reconnect=source.reconnect)
        try:
            summary = run_stream(bundle, opts, fan, on_status=status)
        finally:
            counters = fan.close(summary)   # the sinks' counters; summary_lines(counters) formats them
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..runtime.sinks import FanOut, SinkContext, SinkOption, open_sinks, sink_types
from .common import status

__all__ = ["open_stream_outputs", "output_options"]


def _click_option(option: SinkOption) -> Callable[[Any], Any]:
    if option.kind == "flag":
        return click.option(option.flag, option.dest, is_flag=True, help=option.help)
    types: dict[str, Any] = {"text": click.STRING, "file": click.Path(exists=True, dir_okay=False),
                             "int": click.IntRange(option.minimum, option.maximum)}
    return click.option(option.flag, option.dest, type=types[option.kind], default=option.default,
                        metavar=option.metavar, show_default=option.default is not None, help=option.help)


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every registered sink's options to a click command (their values arrive as keyword arguments)."""
    options = [o for kind in sink_types() for o in kind.options]
    for option in reversed(options):
        fn = _click_option(option)(fn)
    return fn


def open_stream_outputs(bundle: Path, values: dict[str, Any], *, reconnect: bool = False) -> FanOut:
    """Open the sinks the option ``values`` ask for (stdout lines or JSONL always); fatal problems raise one line."""
    from ..core.bundle import Bundle

    name = values.get("device_name") or Path(bundle).name
    ctx = SinkContext(labels=Bundle.load(bundle).labels, out=sys.stdout, title=f"hartool - {name}",
                      model=Path(bundle).name, reconnect=reconnect, on_status=status)
    return open_sinks(values, ctx)
