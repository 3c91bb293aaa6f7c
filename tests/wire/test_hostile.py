"""Hostile and careless peers at the door of the listening ports: real sockets, a real HTTP client, a real broker.

Each test runs an honest sender through a :class:`ReaderThread` (what ``hartool stream`` reads through) while
something else knocks, and asserts that every honest sample is decoded and the rest is refused and counted.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import numpy as np
import paho.mqtt.client as paho
import pytest

from hartool.sim.apps import sensorlogger_packets
from hartool.wire.events import ReaderEvent
from hartool.wire.httppush import MAX_BODY_BYTES, HttpPushPort
from hartool.wire.mqttsub import MqttSubscribePort
from hartool.wire.port import DeviceGone
from hartool.wire.reader import ReaderThread
from hartool.wire.tcp import TcpListenPort
from hartool.wire.udp import UdpPort
from hartool_testing import post
from services import MqttBroker

GUARD_S = 20.0  # a safety net against hangs only; nothing asserts on speed
NAMES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
FIELDS_DOC = json.dumps({"t": 0, **dict.fromkeys(NAMES, 0.0)}).encode()


def text_lines(k: int, start: int = 0) -> bytes:
    return b"".join(b"%d,%.3f,%.3f,%.3f,0.1,0.2,0.3\n" % (10 * i, i / 7, -i / 9, 1.0) for i in range(start, start + k))


def pump(reader: ReaderThread, samples: int) -> list[ReaderEvent]:
    """Take items until the reader decoded ``samples``; returns the events seen."""
    events = []
    deadline = time.monotonic() + GUARD_S
    while reader.stats().samples < samples:
        assert time.monotonic() < deadline, (reader.stats(), events)
        item = reader.get(timeout=0.1)
        if isinstance(item, ReaderEvent):
            events.append(item)
    while (item := reader.get(timeout=0.05)) is not None:
        if isinstance(item, ReaderEvent):
            events.append(item)
    return events


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_http_stray_and_wrong_documents_never_silence_the_phone() -> None:
    values = np.random.default_rng(1).normal(size=(200, 6))
    packets = sensorlogger_packets(values, 50.0, 100.0, 1.0, batch_s=0.2, start_epoch_ns=1_700_000_000 * 10**9,
                                   device_id="phone-1")
    intruder = sensorlogger_packets(values[:20], 50.0, device_id="phone-2", start_epoch_ns=0)[0].data
    port = HttpPushPort("127.0.0.1", 0, "/data")
    url = f"http://127.0.0.1:{port.address[1]}/data"
    with ReaderThread(port, protocol="auto", channel_names=NAMES, start_command=b"") as reader:
        assert post(url, packets[0].data)[0] == 200
        attacks = [(FIELDS_DOC, "text/plain", 415), (FIELDS_DOC, "application/json", 409),
                   (b'{"foo": 1}', "application/json", 400), (b"[1, 2, 3]", "application/json", 400),
                   (b"1,2,3,4,5,6,7\n", "application/json", 415), (intruder, "application/json", 409)]
        assert [post(url, body, ctype)[0] for body, ctype, _ in attacks] == [code for _, _, code in attacks]
        assert all(post(url, p.data)[0] == 200 for p in packets[1:])
        events = pump(reader, sum(p.samples for p in packets))
        counters = reader.port_counters()
    assert reader.stats().samples == sum(p.samples for p in packets)  # every accepted reading decoded
    assert counters["batches"] == len(packets) and counters["refused_senders"] == 2
    assert counters["wrong_schema"] == 2 and counters["bad_messages"] == 2
    door = [e.message for e in events if e.kind == "door"]
    assert len(door) == 3 and all("127.0.0.1" in m for m in door)  # once per kind, with the peer
    assert any("127.0.0.1 refused: deviceId phone-1 is streaming" in m for m in door)


def test_http_size_limit_is_enforced_before_the_body_is_read() -> None:
    port = HttpPushPort("127.0.0.1", 0, "/")
    try:
        with socket.create_connection(port.address, timeout=GUARD_S) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1))
            head = s.recv(200)  # answered without a byte of the body sent
        assert head.startswith(b"HTTP/1.1 413")
        assert port.counters()["too_large"] == 1
    finally:
        port.close()


def test_http_connection_resets_are_counted_not_printed(capfd) -> None:
    port = HttpPushPort("127.0.0.1", 0, "/")
    try:
        for _ in range(3):
            s = socket.create_connection(port.address, timeout=GUARD_S)
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"payload\"")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST in the middle of the body
        wait_for(lambda: port.counters()["client_errors"] == 3, "three resets counted")
        assert port.take_notes() == ["HTTP client 127.0.0.1: connection error"]
    finally:
        port.close()
    assert capfd.readouterr().err == ""  # no traceback


def test_mqtt_retained_garbage_decides_nothing(mqtt_broker: MqttBroker) -> None:
    topic = f"hostile/{time.monotonic_ns()}"
    pub = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    pub.connect(mqtt_broker.host, mqtt_broker.port)
    pub.loop_start()
    try:
        pub.publish(topic, b"\x01\x02 1,2\x00 retained junk", qos=1, retain=True).wait_for_publish(GUARD_S)
        port = MqttSubscribePort(mqtt_broker.url(topic))
        with ReaderThread(port, protocol="auto", channel_names=NAMES, start_command=b"") as reader:
            for k in range(20):
                pub.publish(topic, text_lines(1, k), qos=1).wait_for_publish(GUARD_S)
            pump(reader, 20)
            counters = reader.port_counters()
        assert reader.stats().protocol == "text" and reader.stats().samples == 20
        assert counters["retained"] == 1 and counters["messages"] == 20
    finally:
        pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(GUARD_S)  # clear the retained message
        pub.disconnect()
        pub.loop_stop()


def test_tcp_second_connection_waits_third_is_refused_and_nothing_is_merged() -> None:
    port = TcpListenPort("127.0.0.1", 0, hold_s=3600)
    first, second = text_lines(50), text_lines(70, 50)
    try:
        c1 = socket.create_connection(port.address)
        c1.sendall(first)
        got = bytearray()
        while len(got) < len(first):
            got += port.read(65536)
        assert bytes(got) == first
        c2 = socket.create_connection(port.address)
        c2.sendall(second)
        c3 = socket.create_connection(port.address)
        wait_for(lambda: port.read(65536) == b"" and port.counters()["refused_connections"] == 1, "c3 refused")
        assert c3.recv(10) == b""  # closed at once
        assert port.counters()["waiting_connections"] == 1
        notes = port.take_notes()
        assert len(notes) == 2 and all(f"127.0.0.1:{c1.getsockname()[1]}" in n for n in notes)
        c1.close()  # the streaming client leaves: the waiting one continues the stream, nothing lost
        with pytest.raises(DeviceGone, match="disconnected"):
            for _ in range(1000):
                port.read(65536)
        port.close()
        again = port.reopen()
        got = bytearray()
        deadline = time.monotonic() + GUARD_S
        while len(got) < len(second):
            assert time.monotonic() < deadline
            got += again.read(65536)
        assert bytes(got) == second
        again.close()
        c2.close()
        c3.close()
    finally:
        port.close()


def test_tcp_noise_at_connect_then_lines_still_yields_the_lines() -> None:
    noise = np.random.default_rng(3).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes()
    port = TcpListenPort("127.0.0.1", 0)
    with ReaderThread(port, protocol="auto", expected_channels=6, start_command=b"") as reader:
        with socket.create_connection(port.address) as client:
            client.sendall(noise + text_lines(1000))
            events = pump(reader, 990)
    assert reader.stats().protocol == "text"
    assert [e.message for e in events if e.kind == "protocol"][-1] == "switched to text protocol"


def test_udp_spoofed_sender_is_dropped_at_the_door() -> None:
    port = UdpPort("127.0.0.1", 0, hold_s=3600)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as honest, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:
            for k in range(3):
                honest.sendto(text_lines(1, k), port.address)
            for _ in range(2):
                spoof.sendto(b"999,9,9,9,9,9,9\n", port.address)
            for k in range(3, 5):
                honest.sendto(text_lines(1, k), port.address)
            expected = text_lines(5)
            got = bytearray()
            deadline = time.monotonic() + GUARD_S
            while len(got) < len(expected):
                assert time.monotonic() < deadline
                got += port.read(65536)
            assert bytes(got) == expected
            assert port.counters()["refused_datagrams"] == 2
            assert port.take_notes() == [f"{port.name}: dropped datagrams from 127.0.0.1:{spoof.getsockname()[1]}: "
                                         f"127.0.0.1:{honest.getsockname()[1]} is streaming"]
    finally:
        port.close()
