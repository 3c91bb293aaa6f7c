"""The door of the listening transports: what one framed message is, and who may send on a stream.

Framed transports (an HTTP body, an MQTT payload) are checked message by message, so a stray or hostile
message is refused on its own and can never decide how the stream is decoded: :func:`read_message` names
the message's kind (an app schema of :mod:`hartool.wire.apps`, or text lines) and its sender, or refuses
it with a reason. :class:`SenderGate` keeps one sender per stream: another one is refused while the current
one has been heard within ``hold_s``, and takes over after that. :class:`PeerPolicy` is who may knock at all
(``allow=`` addresses or networks, a shared token), and :func:`read_token` reads a token file (the live page's
and the listening sources').
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hartool.core.errors import WireError
from hartool.wire.apps.registry import refusal, schema_of
from hartool.wire.port import printable
from hartool.wire.text import PRINTABLE

__all__ = ["HOLD_S", "MIN_TOKEN_CHARS", "OPEN", "Message", "PeerPolicy", "Refusal", "SenderGate", "offered_tokens",
           "read_message", "read_token", "same_token"]

#: A sender heard within this many seconds keeps its stream.
HOLD_S = 5.0
_TEXT_BYTES = PRINTABLE + b"\t\r\n"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class Message:
    """An admitted message: its kind ("text" or a schema name), its sender and the line(s) for the decoder."""

    kind: str
    sender: str
    data: bytes


@dataclass(frozen=True)
class Refusal:
    """A refused message: the HTTP status that says why, the reason, and the counter it goes to."""

    status: int
    reason: str
    counter: str = "bad_messages"


def read_message(payload: bytes, channel_names: Sequence[str], peer: str, *, text_ok: bool) -> Message | Refusal:
    """Classify one framed message. JSON must be claimed by one app schema (every object of a list by the
    same one); text must be printable lines (``text_ok``). A Sensor Logger message's sender is its
    ``deviceId``; any other's is ``peer``."""
    body = payload.strip()
    if not body:
        return Refusal(400, "empty message")
    if body[:1] in (b"{", b"["):
        return _json_message(body, channel_names, peer)
    if not text_ok:
        return Refusal(415, "not a JSON document")
    if body.translate(None, _TEXT_BYTES):
        return Refusal(415, "neither JSON nor text lines")
    return Message("text", peer, body + b"\n")


def _json_message(body: bytes, channel_names: Sequence[str], peer: str) -> Message | Refusal:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return Refusal(400, f"not JSON ({printable(exc)})")
    docs = doc if isinstance(doc, list) else [doc]
    kinds = {schema_of(d, channel_names) for d in docs}
    if not docs or None in kinds:
        return Refusal(400, "JSON of no known app schema (Sensor Logger, HyperIMU, or the model's channel names)",
                       "wrong_schema")
    if len(kinds) > 1:
        return Refusal(400, "JSON documents of different app schemas in one message", "wrong_schema")
    why = next((w for d in docs if (w := refusal(d)) is not None), None)
    if why is not None:
        return Refusal(400, why, "bad_batches")
    kind = kinds.pop()
    assert kind is not None
    device = docs[0].get("deviceId") if kind.name == "sensorlogger" else None
    sender = f"deviceId {printable(device, 40)}" if isinstance(device, str) and device else peer
    return Message(kind.name, sender, json.dumps(doc, separators=(",", ":")).encode() + b"\n")


class SenderGate:
    """One sender per stream: ``admit`` says whether a sender may send now, and whom it replaced.

    Hold ``lock`` around ``admit`` and whatever must happen in the same order as the admissions (putting
    the message into the port's buffer).
    """

    def __init__(self, hold_s: float = HOLD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self.current: str | None = None
        self.lock = threading.Lock()
        self._last = 0.0
        self._clock = clock

    def admit(self, sender: str) -> tuple[bool, str | None]:
        """(admitted, the sender it took over from or None); refused while another was heard within hold_s."""
        now = self._clock()
        if self.current is None or sender == self.current:
            self.current, self._last = sender, now
            return True, None
        if now - self._last < self.hold_s:
            return False, self.current
        previous, self.current, self._last = self.current, sender, now
        return True, previous


def read_token(path: str | os.PathLike[str]) -> str:
    """A shared token: the first line of ``path``; WireError when unreadable or shorter than 16 characters."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WireError(f"cannot read token file {path}: {exc.__class__.__name__}") from exc
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN_CHARS:
        raise WireError(f"token file {path}: the token must be at least {MIN_TOKEN_CHARS} characters, e.g. "
                        "python3 -c 'import secrets; print(secrets.token_urlsafe())'")
    return token


def offered_tokens(path: str, headers: Mapping[str, str]) -> list[str]:
    """The tokens an HTTP request offers: ``?token=`` in its URL, ``X-Hartool-Token`` and
    ``Authorization: Bearer`` headers (``headers``: anything with ``get``, such as http.server's)."""
    offered = parse_qs(urlsplit(path).query).get("token", [])
    offered.append(headers.get("X-Hartool-Token", "").strip())
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        offered.append(auth[7:].strip())
    return [o for o in offered if o]


def same_token(token: str, offered: str | bytes) -> bool:
    """Whether ``offered`` is ``token``, compared in constant time."""
    raw = offered if isinstance(offered, bytes) else offered.encode("utf-8", "replace")
    return hmac.compare_digest(token.encode("utf-8"), raw)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PeerPolicy:
    """Who may send to a listening source: peers in ``allow`` (addresses or networks; None: anyone) that
    present ``token`` (None: no token), each refused peer counted as ``refused_peers`` or ``bad_tokens``."""

    allow: tuple[Network, ...] | None = None
    token: str | None = None

    @staticmethod
    def parse_allow(text: str) -> tuple[Network, ...]:
        """``192.168.1.7,192.168.1.0/24,::1`` -> networks; WireError naming what is not an address."""
        nets = []
        for item in (p.strip() for p in text.split(",")):
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise WireError(f"allow={printable(item)!r} is not an IP address or network "
                                "(e.g. allow=192.168.1.7,192.168.1.0/24)") from None
        return tuple(nets)

    def counter_names(self) -> tuple[str, ...]:
        """The counters this policy adds to its port's (so the summary shows them, zero or not)."""
        return (("refused_peers",) if self.allow is not None else ()) + (("bad_tokens",) if self.token else ())

    def allows(self, host: str) -> bool:
        """Whether a peer at ``host`` (an IP address, IPv4-mapped IPv6 included) may connect at all."""
        if self.allow is None:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allow)

    def token_ok(self, offered: Sequence[str | bytes]) -> bool:
        """Whether one of ``offered`` is the token (always True without one)."""
        return self.token is None or any(same_token(self.token, o) for o in offered)


OPEN = PeerPolicy()
