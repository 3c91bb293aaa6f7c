"""safe_text: peer strings lose every control, format and separator character and are capped."""

from __future__ import annotations

import pytest

from hartool.core.safetext import ELLIPSIS, MAX_LABEL, safe_text


@pytest.mark.parametrize(("raw", "safe"), [
    ("WALKING", "WALKING"),
    ("caf\u00e9 \u6b69\u304f \U0001f6b6", "caf\u00e9 \u6b69\u304f \U0001f6b6"),      # ordinary Unicode stays
    ("\x1b]0;owned\x07", "?]0;owned?"),                                             # OSC title sequence
    ("\x1b[H\x1b[2Jx", "?[H?[2Jx"),                                                 # screen clear
    ("a\x9b2Jb", "a?2Jb"),                                                          # C1 CSI
    ("x\u202eevil\u202c", "x?evil?"),                                               # bidi override
    ("a\u2066b\u2069", "a?b?"),                                                     # bidi isolate
    ("line\nsecond\rthird\u2028fourth", "line?second?third?fourth"),
    ("nul\x00del\x7f", "nul?del?"),
    ("zero\u200bwidth", "zero?width"),
    ("lone\ud800", "lone?"),
    (42, "42"),
])
def test_unsafe_characters_are_replaced(raw: object, safe: str) -> None:
    assert safe_text(raw) == safe


def test_long_text_is_capped() -> None:
    out = safe_text("A" * 1_000_000)
    assert len(out) == MAX_LABEL and out.endswith(ELLIPSIS)
    assert safe_text("\x1b" * 500, limit=10) == "???????" + ELLIPSIS
    assert safe_text("x" * 10, limit=10) == "x" * 10
