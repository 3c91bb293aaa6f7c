"""Hostile peers against a real `hartool stream` (issue 22, the network doors): what an honest phone still gets.

Usage: nice -n 10 .venv/bin/python benchmarks/hostile.py --bundle BUNDLE [--code DIR] [--only a,b] [--seconds 120]

For every attack, a `hartool stream` child process (`--jsonl --smooth none`) listens on a real socket while
hartool.sim plays the first --seconds of HAPT test subject 9's first recording as a phone app at 10x real
time, and the attack runs against the same port (real sockets, a real HTTP client, a real mosquitto):

  none            the honest stream alone (the reference count of windows per transport)
  http-stray      before the phone: one named-field JSON POSTed as text/plain (what any web page can send)
  http-schema     during the stream: {"foo": 1} and [1, 2, 3] POSTed as application/json
  http-2nd-phone  during the stream: a second Sensor Logger (another deviceId) POSTs its own batches
  http-big        during the stream: 8 concurrent POSTs of a 15.8 MB JSON body
  http-resets     during the stream: 200 connections reset in the middle of a body
  mqtt-retained   before the stream: a retained 30-byte line with a NUL byte on the topic
  tcp-noise       64 KB of random bytes at the start of the phone's TCP connection, then its lines
  tcp-hijack      during the stream: a second TCP client sends lines for 2 s
  udp-spoof       during the stream: another address sends lines to the UDP port

Columns: honest windows delivered (JSONL lines on stdout) against the `none` run of the same transport,
what the host refused or counted (its summary's port counters and bad input), stderr lines, and the host's
peak RSS as its `--summary-json` reports it (empty when it wrote none). `--code DIR` runs the child with DIR/toolkit first on PYTHONPATH (a worktree
of an older commit, for the "before" column); the senders always come from this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, md_table, save, stamp
from phone_sources import Mosquitto, free_port

from hartool.data import load_dataset
from hartool.sim.apps import sensorlogger_packets
from hartool.sim.play import app_packets, play_app

SPEED = 10.0
IDLE_S = 3.0  # after the phone finished: no new window for this long = the host has it all
NAMES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
HYPERIMU = ["--columns", "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z", "--acc-unit", "m/s2", "--time-unit", "ms"]
# attack -> (the phone app, extra stream options)
ATTACKS: dict[str, tuple[str, list[str]]] = {
    "none-http": ("sensorlogger-http", []),
    "http-stray": ("sensorlogger-http", []),
    "http-schema": ("sensorlogger-http", []),
    "http-2nd-phone": ("sensorlogger-http", []),
    "http-big": ("sensorlogger-http", []),
    "http-resets": ("sensorlogger-http", []),
    "none-mqtt": ("sensorlogger-mqtt", []),
    "mqtt-retained": ("sensorlogger-mqtt", []),
    "none-tcp": ("hyperimu-tcp", HYPERIMU),
    "tcp-noise": ("hyperimu-tcp", HYPERIMU),
    "tcp-hijack": ("hyperimu-tcp", HYPERIMU),
    "none-udp": ("hyperimu-udp", HYPERIMU),
    "udp-spoof": ("hyperimu-udp", HYPERIMU),
}


def post(url: str, body: bytes, ctype: str = "application/json") -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # the connection was cut (a refused huge body)


def _fields_doc() -> bytes:
    return json.dumps({"t": 0, **dict.fromkeys(NAMES, 0.0)}).encode()


def _wrong_schema(url: str) -> None:
    for body in (b'{"foo": 1}', b"[1, 2, 3]"):
        post(url, body)


def _reset_flood(url: str, n: int = 200) -> None:
    host, port = url.split("//")[1].split("/")[0].split(":")
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def _big_posts(url: str, values: np.ndarray) -> None:
    one = sensorlogger_packets(values, 50.0, device_id="big", start_epoch_ns=0)[0].data
    doc = json.loads(one)
    doc["payload"] = doc["payload"] * (15_800_000 // len(one))
    body = json.dumps(doc, separators=(",", ":")).encode()  # just under 15.8 MB
    threads = [threading.Thread(target=post, args=(url, body)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def _second_phone(url: str, values: np.ndarray, done: threading.Event) -> None:
    packets = app_packets("sensorlogger-http", values[::-1].copy(), 50.0, seed=99, batch_s=1.0)
    for p in packets:
        if done.is_set():
            return  # the attack is on the honest stream, not after it
        doc = json.loads(p.data)
        doc["deviceId"] = "intruder"
        post(url, json.dumps(doc).encode())
        time.sleep(1.0 / SPEED)


def _tcp_hijack(to: str, done: threading.Event) -> None:
    host, port = to.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        t_end = time.monotonic() + 2.0
        k = 0
        while time.monotonic() < t_end and not done.is_set():
            s.sendall(b"%d,0,0,9.8,0,0,0,0,0,0\n" % (k * 10))
            k += 1
            time.sleep(0.001)


def _udp_spoof(to: str, done: threading.Event) -> None:
    host, port = to.split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for k in range(500):
            if done.is_set():
                return
            s.sendto(b"%d,0,0,9.8,0,0,0,0,0,0\n" % (k * 10), (host, int(port)))
            time.sleep(0.002)


def _retained(broker_port: int, topic: str) -> None:
    import paho.mqtt.client as paho

    c = paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    c.connect("127.0.0.1", broker_port)
    c.loop_start()
    c.publish(topic, b"1.0,2.0,3.0\x00 retained line", qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def _during(attack: str, to: str, values: np.ndarray, done: threading.Event) -> Callable[[], None] | None:
    """The attack to run while the phone streams (None: nothing during the stream); it ends with the phone."""
    return {
        "http-schema": lambda: _wrong_schema(to),
        "http-2nd-phone": lambda: _second_phone(to, values, done),
        "http-big": lambda: _big_posts(to, values),
        "http-resets": lambda: _reset_flood(to),
        "tcp-hijack": lambda: _tcp_hijack(to, done),
        "udp-spoof": lambda: _udp_spoof(to, done),
    }.get(attack)


def _tcp_noise_phone(to: str, packets: list) -> None:
    """The phone's TCP connection starts with 64 KB of random bytes, then its lines."""
    host, port = to.split(":")
    noise = np.random.default_rng(5).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes()
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection((host, int(port)), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with s:
        s.sendall(noise)
        for p in packets:
            s.sendall(p.data)
            time.sleep(0.0005)


def _host(code: Path | None, bundle: Path, spec: str, extra: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if code is not None:
        env["PYTHONPATH"] = f"{code / 'toolkit'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    cmd = [sys.executable, "-m", "hartool", "stream", str(bundle), "--port", spec, "--jsonl", "--smooth", "none",
           "--summary-json", str(tmp / "summary.json"), *extra]
    # A shell's background job ignores SIGINT, and Python then installs no Ctrl-C handler: undo that.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _spec(app: str, broker: Mosquitto | None) -> tuple[str, str]:
    """(the host's --port, where the phone sends)."""
    port = free_port()
    if app == "sensorlogger-http":
        return f"http://127.0.0.1:{port}/data", f"http://127.0.0.1:{port}/data"
    if app == "sensorlogger-mqtt":
        assert broker is not None
        url = f"mqtt://127.0.0.1:{broker.port}/hostile/{port}"
        return url, url
    scheme = "tcp-listen" if app == "hyperimu-tcp" else "udp"
    return f"{scheme}://127.0.0.1:{port}", f"127.0.0.1:{port}"


class _Pipe(threading.Thread):
    """Counts the lines of a child's output stream (and keeps the last few)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines, self.last = stream, 0, time.monotonic()
        self.tail: list[str] = []
        self.reading = threading.Event()  # the host printed "reading PORT": it listens
        self.start()

    def run(self) -> None:
        for line in self.stream:
            self.lines += 1
            self.last = time.monotonic()
            text = line.decode(errors="replace").rstrip()
            self.tail = (self.tail + [text])[-8:]
            if text.startswith("reading "):
                self.reading.set()


_ROUTINE = {"batches", "messages", "connections", "datagrams", "samples", "windows"}


def _refused(summary: dict[str, Any]) -> str:
    """What the host refused or counted as bad: nonzero door counters and bad-input counters."""
    counts = {k: v for k, v in summary.get("port_counters", {}).items() if v and k not in _ROUTINE}
    for key in ("bad_lines", "bad_batches", "backwards", "dropped", "gaps"):
        if summary.get(key):
            counts[key] = summary[key]
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def _end(proc: subprocess.Popen[bytes]) -> bool:
    """Stop the host with Ctrl-C (as a user would); True when it was still running until then."""
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(180)  # a loaded host can take a while to say goodbye
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    return alive


def run_attack(attack: str, code: Path | None, bundle: Path, values: np.ndarray, broker: Mosquitto | None,
               tmp: Path) -> dict[str, Any]:
    app, extra = ATTACKS[attack]
    spec, to = _spec(app, broker)
    if attack == "mqtt-retained":
        _retained(broker.port if broker else 0, spec.split("/", 3)[3])
    proc = _host(code, bundle, spec, extra, tmp)
    out, err = _Pipe(proc.stdout), _Pipe(proc.stderr)
    if not err.reading.wait(120):
        _end(proc)
        raise SystemExit(f"{attack}: the host did not start: {err.tail}")
    if attack == "http-stray":
        post(to, _fields_doc(), "text/plain")
    packets = app_packets(app, values, 50.0, seed=1, batch_s=1.0)
    done = threading.Event()

    def phone() -> None:
        try:
            if attack == "tcp-noise":
                _tcp_noise_phone(to, packets)
            else:
                play_app(app, packets, to, speed=SPEED)
        finally:
            done.set()

    threading.Thread(target=phone, daemon=True).start()
    during = _during(attack, to, values, done)
    if during is not None:
        time.sleep(min(3.0, len(values) / 50.0 / SPEED / 3))
        during()
    done.wait(600)
    while time.monotonic() - out.last < IDLE_S and proc.poll() is None:
        time.sleep(0.1)
    alive = _end(proc)
    out.join(10)
    err.join(10)
    summary_path = tmp / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary_path.unlink(missing_ok=True)
    return {"attack": attack, "app": app, "windows": out.lines, "stderr_lines": err.lines, "alive": alive,
            "peak_rss_mb": summary.get("peak_rss_mb"), "refused": _refused(summary), "end": summary.get("end_reason"),
            "exit": proc.returncode, "stderr_tail": err.tail}


def render(doc: dict[str, Any]) -> str:
    ref = {r["app"]: r["windows"] for r in doc["rows"] if r["attack"].startswith("none")}
    rows = []
    for r in doc["rows"]:
        delivered = f"{r['windows']} / {ref.get(r['app'], '?')}"
        rows.append([r["attack"], delivered, r["refused"], r["stderr_lines"], r["peak_rss_mb"],
                     "yes" if r["alive"] else f"**no** (ended: {r['end'] or r['exit']})"])
    return md_table(["attack", "honest windows / without attack", "refused or counted", "stderr lines",
                     "peak RSS MB", "survived"], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--code", type=Path, default=None, help="a checkout whose toolkit/ the host runs")
    ap.add_argument("--only", default=",".join(ATTACKS))
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--label", default="after")
    ap.add_argument("--render", type=Path, default=None, help="only print the table of a saved run")
    args = ap.parse_args()
    if args.render is not None:
        print(render(json.loads(args.render.read_text())))
        return 0
    if args.bundle is None:
        ap.error("--bundle is required")
    only = [a for a in args.only.split(",") if a]
    rec = next(r for r in load_dataset("hapt").recordings if r.subject == 9)
    values = rec.values[: int(args.seconds * 50)].astype(np.float64)
    broker = Mosquitto() if any(ATTACKS[a][0] == "sensorlogger-mqtt" for a in only) else None
    doc: dict[str, Any] = {**stamp(sys.argv), "label": args.label, "code": str(args.code or REPO),
                           "recording": rec.session, "seconds": args.seconds, "rows": []}
    tmp = Path(tempfile.mkdtemp(prefix="hartool-hostile-"))
    try:
        for attack in only:
            row = run_attack(attack, args.code, args.bundle, values, broker, tmp)
            print(f"{attack}: {row['windows']} windows, {row['refused']}, stderr {row['stderr_lines']}, "
                  f"RSS {row['peak_rss_mb']} MB, alive {row['alive']}", file=sys.stderr, flush=True)
            doc["rows"].append(row)
            save(f"hostile-{args.label}.json", doc)  # after every attack: a cut-short run keeps its rows
    finally:
        if broker is not None:
            broker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
