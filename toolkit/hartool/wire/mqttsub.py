"""``mqtt://[USER@]BROKER:PORT/TOPIC`` (``mqtts://`` for TLS): subscribe; each message payload is one line.

paho-mqtt (through :mod:`hartool.wire.mqtt`) runs its network loop in a thread of its own that only puts
payloads into a bounded :class:`ByteBuffer`; ``read`` drains it with a timeout. A broker that drops us raises
:class:`DeviceGone`; paho reconnects with backoff and ``reopen()`` returns once it is back.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from hartool.core.errors import WireError
from hartool.wire import mqtt as wmqtt
from hartool.wire.net import DEFAULT_BUFFER_BYTES, REOPEN_WAIT_S, ByteBuffer
from hartool.wire.port import Counters, DeviceGone, Port

__all__ = ["MqttSubscribePort"]

SUBSCRIBE_TIMEOUT_S = 5.0


class _MqttSubscription:
    """The paho client, buffer and counters shared by an MQTT port and the ports ``reopen()`` returns."""

    def __init__(self, spec: str, reconnect: bool, max_buffer: int) -> None:
        self.url = wmqtt.parse_mqtt_url(spec, allow_wildcards=True)
        self.buffer = ByteBuffer(max_buffer)
        self.counts = Counters("messages", "overflow", "connections", "broker_disconnects")
        self.connected = threading.Event()
        self.suback = wmqtt.SubscribeAck()
        self.closed = False
        client = wmqtt.make_client(self.url, client_id=f"hartool-sub-{uuid.uuid4().hex[:10]}",
                                   password=wmqtt.read_password())
        client.on_connect = self._on_connect
        client.on_subscribe = self.suback.on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self.client = client
        wmqtt.connect(client, self.url, wait=not reconnect)
        if not reconnect:
            self.suback.wait(client, self.url, SUBSCRIBE_TIMEOUT_S)

    # paho callbacks (paho's network thread): they only touch the buffer, counters and events.
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            return
        self.counts.add("connections")
        client.subscribe(self.url.prefix, qos=1)  # clean session: subscribe on every (re)connection
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        payload = bytes(message.payload)
        if not payload.endswith(b"\n"):
            payload += b"\n"
        if self.buffer.put(payload):
            self.counts.add("messages")
        else:
            self.counts.add("overflow")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected.is_set() and not self.closed:
            self.counts.add("broker_disconnects")
            self.buffer.mark_gone(f"MQTT broker {self.url.display()} went away ({reason})")
        self.connected.clear()
        self.suback.event.clear()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            wmqtt.disconnect(self.client)


class MqttSubscribePort(Port):
    """``mqtt://[USER@]BROKER:PORT/TOPIC``: each message payload on TOPIC (wildcards allowed) as one line.

    Without ``reconnect`` the broker must answer at once (CONNACK and SUBACK), else :class:`WireError`.
    With it, paho connects in the background with backoff and ``read`` returns ``b""`` meanwhile.
    """

    listening = True
    reopenable = True

    def __init__(self, spec: str, timeout: float = 0.05, reconnect: bool = False,
                 max_buffer: int = DEFAULT_BUFFER_BYTES, *, _sub: _MqttSubscription | None = None) -> None:
        self._sub = _sub or _MqttSubscription(spec, reconnect, max_buffer)
        super().__init__(self._sub.url.display(), timeout, self._sub.counts)
        self._gone = False
        self._closed = False

    def read(self, n: int) -> bytes:
        if self._closed or self._gone:
            raise DeviceGone(f"{self.name}: closed")
        data = self._sub.buffer.take(n, self.timeout)
        if isinstance(data, str):
            self._gone = True
            raise DeviceGone(data)
        return data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._gone:  # after a broker drop the subscription stays for reopen()
            self._sub.close()

    def reopen(self) -> MqttSubscribePort:
        """The same subscription once paho is reconnected; :class:`WireError` if not within ``REOPEN_WAIT_S``."""
        if self._sub.closed:
            raise WireError(f"{self.name}: closed")
        if not self._sub.connected.wait(REOPEN_WAIT_S):
            raise WireError(f"MQTT broker {self.name} is not back yet")
        return MqttSubscribePort(self.name, self.timeout, _sub=self._sub)
