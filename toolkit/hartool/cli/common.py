"""Helpers shared by CLI modules: JSON output, status lines on stderr, and simple tables."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click


def status(message: str) -> None:
    """Status goes to stderr so stdout stays clean data."""
    click.echo(message, err=True)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned first column, right-aligned others; good enough for terminals and READMEs."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100.0 * value:.{digits}f}%"


@contextmanager
def first_interrupt_calls(first: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C calls ``first`` instead of raising; a second one raises KeyboardInterrupt.

    SIGTERM and SIGHUP arrive here too (``hartool.cli.main`` routes them to the SIGINT handler). A
    KeyboardInterrupt raised between two bytecodes can split "write the window" from "count the window",
    so a stream stopped by systemd could print a window its summary does not count; a flag the stream
    checks between batches cannot. Main thread only (Python's rule for signal handlers).
    """
    calls = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise KeyboardInterrupt
        first()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
