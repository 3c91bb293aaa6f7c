"""The MicroPython streamer, fed a held-out subject, drives `hartool stream` over a real pty exactly like
`hartool simulate` does: same windows, same predictions."""

from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path

import numpy as np
import pytest
from hartool_fw_support import micropython_modules

from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.session import run_stream
from hartool.runtime.stream import StreamOptions, WindowPrediction
from hartool.sim.device import VirtualDevice
from hartool.wire.spec import SourceSpec

N = 1500
WINDOWS = (N - 128) // 64 + 1


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    recs = recording_for_subject(load_dataset("hapt"), 9)
    return np.concatenate([r.values for r in recs])[:N].astype(np.float32)


def _firmware_bytes(samples: np.ndarray, mode: str) -> bytes:
    wire, main, imu = micropython_modules()
    streamer = main.Streamer(imu.FakeIMU(samples.tolist(), loop=False), mode=mode, samples_per_frame=4)
    out = [b"\r\n" if mode == "text" else b"\x00"]  # a board's boot noise: the host skips a first partial line
    out += [streamer.sample(20 * i) for i in range(len(samples))]
    out.append(streamer.command(b"p"[0]))  # pausing flushes a partial binary frame
    return b"".join(out)


def _serve_pty(payload: bytes) -> tuple[str, threading.Thread, list[int]]:
    """A pty whose device end waits for the host's start byte, then writes ``payload``."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)

    def run() -> None:
        ready, _, _ = select.select([master], [], [], 20)
        if ready:
            os.read(master, 16)  # 's' from the host
            view = memoryview(payload)
            while view:
                _, writable, _ = select.select([], [master], [], 20)
                if not writable:
                    break
                view = view[os.write(master, view[:4096]):]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return os.ttyname(slave), thread, [master, slave]


def _stream(bundle: Path, port: str, protocol: str) -> list[WindowPrediction]:
    rows: list[WindowPrediction] = []
    run_stream(bundle, StreamOptions(SourceSpec(port, protocol=protocol), artifact="tflite-int8", max_windows=WINDOWS,
                                     duration_s=30), rows.append)
    return rows


@pytest.mark.parametrize("mode", ["text", "binary"])
def test_micropython_streamer_matches_simulate(quantized_bundle: Path, samples: np.ndarray, mode: str) -> None:
    port, thread, fds = _serve_pty(_firmware_bytes(samples, mode))
    try:
        firmware = _stream(quantized_bundle, port, mode)
    finally:
        thread.join(5)
        for fd in fds:
            os.close(fd)
    with VirtualDevice(samples, speed=0, protocol=mode, samples_per_frame=4, paused=True) as dev:
        dev.start()
        simulated = _stream(quantized_bundle, dev.port_path, mode)
    assert len(firmware) == len(simulated) == WINDOWS
    assert [r.label for r in firmware] == [r.label for r in simulated]
    np.testing.assert_allclose([r.probs for r in firmware], [r.probs for r in simulated], atol=1e-6)
    assert all(r.dropped == 0 for r in firmware)
