"""SIGTERM and SIGHUP stop the long-running commands the way Ctrl-C does (what `systemctl stop`, `docker stop`
and a closed terminal send): `stream` delivers the windows its look-ahead smoother held, prints and writes its
summary and leaves MQTT with its offline status; `record` leaves a complete CSV at `--out` and no `.part`.

Real processes on a real pseudo-terminal (`hartool simulate`), a real broker; the signal is sent once some
output arrived, and every check is on counts, never on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hartool.core.csvformat import read_csv_session
from hartool.runtime.smoothing import DEFAULT_SMOOTHING, make_smoother
from hartool.wire.mqtt import parse_mqtt_url
from hartool_testing import SAFETY_S, wait_until
from mqtt_testing import Recorder

LAG = make_smoother(DEFAULT_SMOOTHING, 6).lag  # the default smoothing holds this many windows for look-ahead


class Proc:
    """A `python -m hartool ARGS` child whose stdout and stderr lines are collected by threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hartool", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, what: str, cond) -> None:  # type: ignore[no-untyped-def]
        def ok() -> bool:
            if cond():
                return True
            assert self.proc.poll() is None, f"{what}: exited {self.proc.returncode}\n" + "\n".join(self.err)
            return False

        wait_until(ok, what=what)

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(SAFETY_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(SAFETY_S)
            raise AssertionError(f"{signal.Signals(sig).name} ignored:\n" + "\n".join(self.err)) from None
        for t in self._threads:
            t.join(SAFETY_S)
        return code


@pytest.fixture()
def board():  # type: ignore[no-untyped-def]
    """A virtual IMU board on a pty, playing test subject 9 at ten times real time."""
    sim = Proc("simulate", "--subject", "9", "--speed", "10")
    sim.wait_for("the board's pty", lambda: bool(sim.out))
    yield sim.out[0].strip()
    sim.stop(signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stream_stopped_by_a_signal_delivers_held_windows_and_its_summary(  # type: ignore[no-untyped-def]
        quantized_bundle: Path, board: str, mqtt_broker, tmp_path: Path, sig: int) -> None:
    prefix = f"sig-{sig}"
    url = mqtt_broker.url(prefix)
    summary_path = tmp_path / "summary.json"
    with Recorder(parse_mqtt_url(url), f"{prefix}/#") as rec:
        proc = Proc("stream", str(quantized_bundle), "--port", board, "--jsonl", "--summary-json", str(summary_path),
                    "--publish", url, "--device-name", "pi")
        proc.wait_for("some windows", lambda: len(proc.out) >= 3)
        seen = len(proc.out)
        assert proc.stop(sig) == 0                                        # as Ctrl-C: the summary, exit 0
        summary = json.loads(summary_path.read_text())
        wait_until(lambda: rec.on("/status")[-1:] and rec.on("/status")[-1].payload == "offline", what="offline")
        wait_until(lambda: len(rec.on("/window")) >= summary["windows"], what="every window over MQTT")
    rows = [json.loads(line) for line in proc.out]
    assert summary["end_reason"] == "interrupted"
    assert len(rows) == summary["windows"] >= seen + LAG                 # the held windows came out too
    assert [r["window"] for r in rows] == list(range(len(rows)))
    assert summary["mqtt_windows"] == summary["mqtt_delivered"] == summary["windows"]
    assert summary["mqtt_undelivered"] == 0
    assert any(line.startswith("summary: ") and f"{summary['windows']} windows" in line for line in proc.err)
    assert [m.payload for m in rec.on("/status")] == ["online", "offline"]
    # A clean goodbye, not the last will: the retained final counters count every window.
    with Recorder(parse_mqtt_url(url), f"{prefix}/pi/+") as late:
        wait_until(lambda: late.on("/status") and late.on("/stats"), what="retained status and stats")
    assert late.on("/status")[-1].payload == "offline" and late.on("/status")[-1].retain
    assert json.loads(late.on("/stats")[-1].payload)["mqtt_delivered"] == summary["windows"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_record_stopped_by_a_signal_leaves_every_row_at_out(board: str, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "data" / "alice_1.csv"
    part = out.with_name(f".{out.name}.part")
    proc = Proc("record", "--port", board, "--out", str(out), "--label", "WALKING", "--subject", "alice", "--json")
    proc.wait_for("rows flushed to the part file", lambda: part.exists() and part.read_text().count("\n") > 20)
    assert proc.stop(sig) == 0
    result = json.loads("\n".join(proc.out))
    assert result["end_reason"] in ("stopped", "interrupted")
    assert not part.exists() and sorted(p.name for p in out.parent.iterdir()) == [out.name]
    session = read_csv_session(out)                                       # a valid recording, parsed whole
    assert len(session.values) == result["samples"] > 20                  # every sample counted is on disk
    assert set(session.labels) == {"WALKING"}
