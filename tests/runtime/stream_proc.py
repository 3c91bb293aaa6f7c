"""`hartool stream` as a child process fed through a real pipe, for the sink tests (publish, serve)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.smoothing import CAUSAL_SMOOTHING
from hartool.wire.text import encode_text_line
from hartool_testing import wait_until


def subject_recording(subject: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """(values (n, 6) float32, labels (n,)) of a held-out subject's recordings, concatenated."""
    recs = recording_for_subject(load_dataset("hapt"), subject)
    return (np.concatenate([r.values for r in recs]).astype(np.float32),
            np.concatenate([r.labels for r in recs]))


def text_lines(values: np.ndarray) -> bytes:
    return b"".join(encode_text_line(v) for v in values)


class StreamProc:
    """``python -m hartool stream BUNDLE --port - ARGS`` with stdin a pipe; stderr collected line by line."""

    def __init__(self, bundle: Path, *args: str, env: dict[str, str] | None = None) -> None:
        # The sink tests feed a few windows and wait for them: a causal smoother answers each window as soon as
        # it is complete (the default looks 3 windows ahead and would hold the last ones until input goes quiet).
        smooth = () if "--smooth" in args else ("--smooth", CAUSAL_SMOOTHING)
        cmd = [sys.executable, "-m", "hartool", "stream", str(bundle), "--port", "-", *args, *smooth]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
        self.err_lines: list[str] = []
        self.out_lines: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, self.err_lines), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stdout, self.out_lines), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
        for raw in iter(stream.readline, b""):
            sink.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_err(self, pattern: str) -> re.Match[str]:
        rx = re.compile(pattern)

        def found() -> re.Match[str] | None:
            for line in list(self.err_lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                raise AssertionError(f"stream exited ({self.proc.returncode}):\n" + "\n".join(self.err_lines))
            return None

        return wait_until(found, what=pattern)

    def finish(self, timeout: float = 120.0) -> int:
        """Close stdin (end of input), wait for the exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(10)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for t in self._threads:
            t.join(10)
