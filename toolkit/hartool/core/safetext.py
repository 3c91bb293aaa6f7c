"""Safe text: a peer-supplied string made harmless for a terminal, a log line, a page or an MQTT topic.

Device names, labels and states arrive from the network (or from a copied bundle). Raw, an ESC or OSC
sequence retitles or clears the user's terminal, a C1 control (U+009B is a one-character CSI on many
terminals) does the same, a bidi override makes a log line read differently from its bytes, and a 1 MB
label floods the screen. :func:`safe_text` replaces every control, format (bidi, zero-width) and
line/paragraph-separator character with ``?`` and caps the length, marking the cut with ``...``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["MAX_LABEL", "MAX_NAME", "safe_text"]

MAX_NAME = 64    # device names: one table column, one topic level
MAX_LABEL = 100  # activity labels and states
REPLACEMENT = "?"
ELLIPSIS = "..."
# Cc: C0, DEL and C1 controls; Cf: bidi overrides/isolates, zero-width and other invisible format characters;
# Zl/Zp: line and paragraph separators (a second "line" in a log); Cs: lone surrogates (not encodable).
_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def safe_text(value: Any, limit: int = MAX_LABEL) -> str:
    """``str(value)`` with unsafe characters replaced by ``?`` and at most ``limit`` characters.

    Cheap for the common case (short printable ASCII); the cut is made before the scan, so a megabyte
    label costs no more than ``limit`` characters of work.
    """
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    if cut:
        text = text[: max(0, limit - len(ELLIPSIS))]
    if not (text.isascii() and text.isprintable()):
        text = "".join(REPLACEMENT if unicodedata.category(c) in _UNSAFE else c for c in text)
    return text + ELLIPSIS if cut else text
