"""A systemd unit that runs `hartool stream` as a service on a Pi: text only, nothing installed.

systemd stops a service with SIGTERM (then SIGKILL after ``TimeoutStopSec``); `hartool stream` treats SIGTERM
like Ctrl-C, so the stop delivers held windows, writes the summary and publishes the MQTT offline status.
The unit writes its files under ``StateDirectory`` (``/var/lib/<name>``) and logs to the journal.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

# Unit names: systemd allows more, but a name that needs escaping is a name a user mistyped.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# Characters that make a word need double quotes in ExecStart (systemd.service "Command lines").
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """What the unit runs: ``hartool stream BUNDLE ARGS...`` as ``user``, restarted on failure."""

    name: str
    executable: str
    bundle: str
    stream_args: tuple[str, ...]
    user: str
    group: str | None = "dialout"
    restart_s: float = 5.0
    stop_timeout_s: float = 20.0


def exec_word(word: str) -> str:
    """One ExecStart word, escaped so systemd hands ``word`` to the program unchanged.

    ``%`` is a specifier and ``$`` a variable to systemd: both are doubled; quotes, backslashes and
    whitespace go inside double quotes with C-style escapes; control characters are refused.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in word):
        raise ValueError(f"control character in {word!r}: not allowed in a unit file")
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not _NEEDS_QUOTES.search(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(spec: ServiceSpec) -> str:
    """The unit file's text for ``spec`` (raises ValueError on a name or word systemd would misread)."""
    if not _NAME.match(spec.name):
        raise ValueError(f"service name {spec.name!r}: use letters, digits, '_', '.', '-' or '@'")
    argv: Sequence[str] = [spec.executable, "stream", spec.bundle, *spec.stream_args]
    lines = [
        "[Unit]",
        f"Description=hartool stream: live activity recognition ({spec.name})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={exec_word(spec.user)}",
        *([f"SupplementaryGroups={spec.group}"] if spec.group else []),
        f"StateDirectory={spec.name}",
        f"WorkingDirectory=/var/lib/{spec.name}",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={' '.join(exec_word(w) for w in argv)}",
        # SIGTERM is the stop signal; hartool flushes and writes its summary on it.
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={spec.stop_timeout_s:g}",
        "Restart=on-failure",
        f"RestartSec={spec.restart_s:g}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
