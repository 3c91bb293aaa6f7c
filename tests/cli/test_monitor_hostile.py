"""`hartool monitor` against hostile publishers on a real broker: terminal-safe output, bounded memory, prompt exit.

Peers invent device names, labels and states. None of it may reach the terminal raw (ESC/OSC/C1 sequences,
bidi overrides, megabyte labels), inventing names may not grow the process without bound, and SIGTERM /
SIGHUP stop it like Ctrl-C even while a flood is still arriving.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hartool.runtime.monitor import FleetMonitor
from hartool.wire.mqtt import connect, disconnect, make_client, parse_mqtt_url
from mqtt_testing import SAFETY_S, wait_until

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MEMORY_LIMIT_MB = 150
FLOOD_NAMES = 100_000


class MonitorProc:
    """`hartool monitor URL ...` as a child process whose stdout and stderr are collected by threads."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hartool", "monitor", url, "--duration", "3600", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self._lock = threading.Lock()
        for stream, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._collect, args=(stream, buf), daemon=True).start()
        wait_until(lambda: b"watching" in self.err or self.proc.poll() is not None, what="monitor subscribed")
        assert self.proc.poll() is None, self.err.decode()

    def _collect(self, stream, buf: bytearray) -> None:  # type: ignore[no-untyped-def]
        for chunk in iter(lambda: stream.read1(1 << 16), b""):
            with self._lock:
                buf.extend(chunk)

    def text(self) -> str:
        with self._lock:
            return self.out.decode("utf-8", "replace")

    def last_table(self) -> str:
        """The newest complete table (tables are separated by their header line)."""
        text = self.text()
        start = text.rfind(" devices under ")
        return text[text.rfind("\n", 0, start) + 1:] if start >= 0 else ""

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(SAFETY_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(SAFETY_S)
            raise AssertionError(f"monitor ignored {signal.Signals(sig).name}") from None


def _client(url: str):  # type: ignore[no-untyped-def]
    u = parse_mqtt_url(url)
    client = make_client(u)
    connect(client, u)
    return u, client


def _window(index: int, label: str = "WALKING") -> bytes:
    return json.dumps({"window": index, "label": label, "confidence": 0.9, "dropped": 0}).encode()


def _until_shown(proc: MonitorProc, publish, cond, what: str) -> None:  # type: ignore[no-untyped-def]
    """Publish (again, at most once a second) until the monitor's output satisfies ``cond``: a marker that
    a broker under a flood may have dropped is simply sent again; only a hang guard, never a speed check."""
    deadline = time.monotonic() + 4 * SAFETY_S
    while not cond():
        assert time.monotonic() < deadline and proc.proc.poll() is None, f"never shown: {what}\n{proc.err.decode()}"
        publish()
        for _ in range(50):
            if cond():
                return
            time.sleep(0.02)


# mosquitto disconnects a client whose topic holds C0/C1 controls, so hostile names here use what it lets through
# (bidi, zero-width, length); test_hostile_topic_names covers controls in names for brokers that pass them.
HOSTILE = [
    ("evil\u202eliam\u200b/state", b"\x1b[H\x1b[2JSITTING\x1b]0;title\x07"),
    ("bidi/window", _window(3, "WALK\u202eGNIK\u202c\x9b2J")),
    ("huge/window", _window(7, "L" * 1_000_000)),
    ("huge/state", b"\x1b" * 300),
    ("N" * 5000 + "/status", b"online"),
]


@pytest.mark.parametrize("mode", ["table", "jsonl"])
def test_device_strings_never_reach_the_terminal_raw(mqtt_broker, mode: str) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url(f"hostile-{mode}")
    mon = MonitorProc(url, *(["--jsonl"] if mode == "jsonl" else []))
    u, client = _client(url)
    try:
        for topic, payload in HOSTILE:
            client.publish(u.topic(topic), payload, qos=1).wait_for_publish(SAFETY_S)
        _until_shown(mon, lambda: client.publish(u.topic("zz-end/window"), _window(41), qos=1),
                     lambda: all(n in mon.text() for n in ("zz-end", "huge", "bidi")), "the marker device")
        assert mon.stop() == 0
    finally:
        disconnect(client)
    out = bytes(mon.out).decode("utf-8")
    assert not UNSAFE.search(out), repr(UNSAFE.search(out))
    assert max(len(line) for line in out.splitlines()) < 400       # a 1 MB label is cut, not printed
    assert len(out) < 200_000
    if mode == "jsonl":
        rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
        assert rows["huge"]["activity"].endswith("...") and len(rows["huge"]["activity"]) == 100
        assert rows["bidi"]["activity"] == "WALK?GNIK??2J"
        assert rows["evil?liam?"]["activity"] == "?[H?[2JSITTING?]0;title?"
        assert rows["N" * 61 + "..."]["online"] is True
        assert rows["zz-end"]["windows"] == 42                       # the device's own count
    else:
        assert re.search(r"^evil\?liam\?\s+\?\[H\?\[2JSITTING\?\]0;title\?\s", out, re.M)


def test_a_hundred_thousand_names_stay_bounded(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("flood")
    mon = MonitorProc(url)
    u, client = _client(url)
    try:
        client.publish(u.topic("honest/window"), _window(0), qos=1).wait_for_publish(SAFETY_S)
        _until_shown(mon, lambda: None, lambda: re.search(r"^honest\s", mon.last_table(), re.M), "the honest device")
        info = None
        for i in range(FLOOD_NAMES):
            info = client.publish(u.topic(f"fake-{i:06d}-{'x' * 40}/window"), _window(i), qos=1)
            if i % 500 == 499:
                info.wait_for_publish(SAFETY_S)  # let the broker keep pace; every name is sent
        assert info is not None
        info.wait_for_publish(SAFETY_S)
        index = iter(range(1, 10**6))
        _until_shown(mon, lambda: client.publish(u.topic("honest/window"), _window(next(index) + 99), qos=1),
                     lambda: re.search(r"^honest\s+WALKING\s+\S+\s+\S+\s+1\d\d\s", mon.last_table(), re.M),
                     "honest after flood")
        table = mon.last_table()
        peak = mon.peak_rss_mb()
        assert mon.stop(signal.SIGHUP) == 0
    finally:
        disconnect(client)
    head = table.splitlines()[0]
    untracked = int(re.search(r"untracked messages (\d+)", head).group(1))  # type: ignore[union-attr]
    assert head.startswith("1000 devices under flood/")               # the cap, the honest device among them
    print(f"peak RSS {peak:.1f} MB with {FLOOD_NAMES} names; untracked messages {untracked}")
    assert untracked > FLOOD_NAMES // 2
    assert peak < MEMORY_LIMIT_MB


def test_sigterm_under_a_flood_exits_promptly(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("flood-term")
    mon = MonitorProc(url, "--jsonl")
    u, client = _client(url)
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        while not stop.is_set():
            client.publish(u.topic(f"f{sent[0] % 50_000}/window"), _window(sent[0]), qos=0)
            sent[0] += 1

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        wait_until(lambda: sent[0] > 20_000 and b'"name"' in mon.out, what="flood under way")
        assert mon.stop(signal.SIGTERM) == 0
    finally:
        stop.set()
        thread.join(SAFETY_S)
        disconnect(client)
    assert b"Traceback" not in mon.err


def test_silent_devices_expire_and_the_cap_counts_the_rest(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("expire")
    u, client = _client(url)
    with FleetMonitor(parse_mqtt_url(url), expire_s=30.0, max_devices=2) as mon:
        for name in ("a", "b", "c"):
            client.publish(u.topic(f"{name}/window"), _window(4), qos=1).wait_for_publish(SAFETY_S)
        wait_until(lambda: mon.snapshot()["messages"] == 3, what="three messages")
        snap = mon.snapshot()
        later = mon.snapshot(now=snap["now"] + 31.0)
    disconnect(client)
    assert [d["name"] for d in snap["devices"]] == ["a", "b"] and snap["untracked"] == 1
    assert snap["devices"][0]["windows"] == 5 and snap["devices"][0]["received"] == 1
    assert later["devices"] == [] and later["expired"] == 2


def test_hostile_topic_names(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    """Controls in a topic name (brokers other than mosquitto may pass them) are replaced like any device string."""
    mon = FleetMonitor(parse_mqtt_url(mqtt_broker.url("names")))
    now = time.time()
    assert mon._apply("names/a\x1b]0;x\x07b\x9b/window", _window(1), now) is True
    assert mon._apply("names/c\nd/state", "\u202eSIT".encode(), now) is True
    assert [(d["name"], d["activity"]) for d in mon.snapshot(now)["devices"]] == [("a?]0;x?b?", "WALKING"),
                                                                                   ("c?d", "?SIT")]


def test_monitor_page_binds_localhost_and_wants_its_token(mqtt_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import urllib.error
    import urllib.request

    token = "a-token-that-is-long-enough"
    (tmp_path / "tok").write_text(token + "\n")
    mon = MonitorProc(mqtt_broker.url("m-tok"), "--serve", ":0", "--token-file", str(tmp_path / "tok"))
    try:
        line = next(ln for ln in mon.err.decode().splitlines() if "page on" in ln)
        m = re.search(r"page on http://127\.0\.0\.1:(\d+)/ \(token required", line)
        assert m, line
        url = f"http://127.0.0.1:{m.group(1)}/state"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=30)
        assert err.value.code == 401
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read())["devices"] == []
    finally:
        assert mon.stop(signal.SIGINT) == 0
