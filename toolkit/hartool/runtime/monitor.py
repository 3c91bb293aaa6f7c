"""The fleet monitor: every device publishing under an MQTT prefix, as rows of plain data.

It subscribes to ``PREFIX/#`` and reads what :mod:`hartool.runtime.sinks.mqtt` publishes:
``PREFIX/NAME/window`` (window JSON), ``.../state`` (activity), ``.../status`` (online/offline, retained)
and ``.../stats`` (publisher counters, retained). Anything else under the prefix, or a payload that does not
parse, is counted in ``malformed`` and skipped. The CLI (`hartool monitor`) prints :meth:`FleetMonitor.snapshot`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from ..wire.mqtt import MqttUrl, SubscribeAck, connect, disconnect, make_client

__all__ = ["DeviceRow", "FleetMonitor", "MonitorPage"]

RATE_SPAN_S = 10.0  # windows/s is measured over the last 10 s of arrivals
KINDS = ("window", "state", "status", "stats")


@dataclass
class DeviceRow:
    """What the monitor knows about one device."""

    name: str
    activity: str | None = None
    confidence: float | None = None
    windows: int = 0
    last_window: int | None = None
    drops: int = 0
    dropped_samples: int = 0
    overflow: int = 0
    online: bool | None = None
    last_seen: float | None = None
    windows_per_s: float = 0.0
    _arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=2000), repr=False)

    def to_json(self, now: float) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["windows_per_s"] = round(self.rate(now), 3)
        out["last_seen_s_ago"] = None if self.last_seen is None else round(now - self.last_seen, 3)
        return out

    def rate(self, now: float) -> float:
        while self._arrivals and now - self._arrivals[0] > RATE_SPAN_S:
            self._arrivals.popleft()
        if not self._arrivals:
            return 0.0
        # Over the span the arrivals cover (at least 1 s), so a fresh device does not show a huge rate.
        span = max(1.0, min(RATE_SPAN_S, now - self._arrivals[0]))
        return len(self._arrivals) / span


class FleetMonitor:
    """Subscribes to ``url.prefix/#`` and keeps a :class:`DeviceRow` per device name (thread-safe)."""

    def __init__(self, url: MqttUrl, *, password: str | None = None, ca_file: str | None = None,
                 client_id: str = "", connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.devices: dict[str, DeviceRow] = {}
        self.malformed = 0
        self.messages = 0
        self._lock = threading.Lock()
        self._timeout = connect_timeout_s
        self._client = make_client(url, client_id=client_id, password=password, ca_file=ca_file,
                                   connect_timeout_s=connect_timeout_s)
        self._suback = SubscribeAck()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._suback.on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> FleetMonitor:
        """Connect and subscribe; :class:`WireError` (one line) when the broker is unreachable or refuses.

        Returns once the broker confirmed the subscription, so no message published after it is missed.
        """
        connect(self._client, self.url, timeout_s=self._timeout)
        self._suback.wait(self._client, self.url, self._timeout)
        return self

    def close(self) -> None:
        disconnect(self._client)

    def __enter__(self) -> FleetMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """``{"now", "devices": [row dicts sorted by name], "online", "malformed", "messages"}``."""
        now = time.time() if now is None else now
        with self._lock:
            rows = [self.devices[name].to_json(now) for name in sorted(self.devices)]
            malformed, messages = self.malformed, self.messages
        return {"now": now, "prefix": self.url.prefix, "devices": rows,
                "online": sum(1 for r in rows if r["online"]), "malformed": malformed, "messages": messages}

    # --- paho's thread ----------------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:  # (re)subscribe on every connection: a restarted broker forgot us
            client.subscribe(self.url.topic("#"), qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages += 1
            if not self._apply(msg.topic, msg.payload, time.time()):
                self.malformed += 1

    def _apply(self, topic: str, payload: bytes, now: float) -> bool:
        """Update the device's row from one message; False when the message is malformed."""
        rest = topic[len(self.url.prefix) + 1:] if self.url.prefix else topic
        parts = rest.split("/")
        if len(parts) != 2 or not parts[0] or parts[1] not in KINDS:
            return False
        name, kind = parts
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if kind == "status":
            if text not in ("online", "offline"):
                return False
            self._row(name).online = text == "online"
            return True
        if kind == "state":
            if not text or len(text) > 200:
                return False
            self._row(name).activity = text
            return True
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return False
        if kind == "stats":
            return self._apply_stats(name, data)
        return self._apply_window(name, data, now)

    def _row(self, name: str) -> DeviceRow:
        row = self.devices.get(name)
        if row is None:
            row = self.devices[name] = DeviceRow(name)
        return row

    def _apply_window(self, name: str, data: Any, now: float) -> bool:
        if not isinstance(data, dict):
            return False
        label, conf, index = data.get("label"), data.get("confidence"), data.get("window")
        dropped = data.get("dropped", 0)
        if not isinstance(label, str) or not _number(conf) or not isinstance(index, int) \
                or not isinstance(dropped, int):
            return False
        row = self._row(name)
        row.activity, row.confidence, row.last_window = label, float(conf), index
        row.windows += 1
        row.dropped_samples = dropped
        row.drops = row.dropped_samples + row.overflow
        row.last_seen = now
        row.online = True if row.online is None else row.online
        row._arrivals.append(now)
        return True

    def _apply_stats(self, name: str, data: Any) -> bool:
        if not isinstance(data, dict) or not isinstance(data.get("mqtt_overflow", 0), int):
            return False
        row = self._row(name)
        row.overflow = int(data.get("mqtt_overflow", 0))
        row.drops = row.dropped_samples + row.overflow
        return True


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class MonitorPage:
    """``hartool monitor --serve``: the monitor's snapshot as a live page, pushed once per ``every_s``."""

    def __init__(self, monitor: FleetMonitor, host: str, port: int, every_s: float = 1.0) -> None:
        from .sinks.page import LiveHub, LiveServer

        self.monitor = monitor
        self.hub = LiveHub(lambda _kind, obj: obj, monitor.snapshot, history=1)
        self.server = LiveServer(host, port, self.hub, page="monitor.html")
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-page", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> MonitorPage:
        self.server.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.hub.push("devices", self.monitor.snapshot())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.server.close()
