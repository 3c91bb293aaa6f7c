"""Helpers for the MQTT sink/monitor tests: a recording subscriber and a window object like the stream's."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from hartool.wire.mqtt import MqttUrl, connect, disconnect, make_client
from hartool_testing import SAFETY_S, wait_until


@dataclass
class Msg:
    topic: str
    payload: str
    retain: bool
    qos: int


class Recorder:
    """A real MQTT subscriber to ``topic`` that keeps every message (resubscribes after a broker restart)."""

    def __init__(self, url: MqttUrl, topic: str, client_id: str = "") -> None:
        self.url = url
        self.topic = topic
        self.messages: list[Msg] = []
        self.connects = 0
        self._lock = threading.Lock()
        self.client = make_client(url, client_id=client_id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._subscribed.clear()
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self._lock:
            self.connects += 1
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append(Msg(msg.topic, msg.payload.decode("utf-8", "replace"), bool(msg.retain), msg.qos))

    def start(self) -> Recorder:
        connect(self.client, self.url)
        assert self._subscribed.wait(SAFETY_S), "subscription not acknowledged"
        return self

    def wait_subscribed(self, connects: int) -> None:
        """Wait until the subscription of the ``connects``-th connection is acknowledged."""
        wait_until(lambda: self.connects >= connects, what=f"subscription #{connects}")

    def on(self, suffix: str) -> list[Msg]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def windows(self, suffix: str = "/window") -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.on(suffix)]

    def close(self) -> None:
        disconnect(self.client)

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Win:
    """The parts of a stream WindowPrediction the sinks read (label, confidence, probs, dropped, to_json)."""

    window: int
    label: str
    confidence: float = 0.9
    probs: list[float] = field(default_factory=lambda: [0.9, 0.1])
    dropped: int = 0
    uncertain: bool = False
    raw_probs: list[float] = field(default_factory=lambda: [0.9, 0.1])
    t_end_s: float = 0.0
    calibrated: bool = True
    source: str = "host"

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "label": self.label, "confidence": self.confidence, "probs": self.probs,
                "dropped": self.dropped, "uncertain": self.uncertain, "source": self.source}
