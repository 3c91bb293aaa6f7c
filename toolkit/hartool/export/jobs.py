"""Converter jobs in a child process that outlives one job: TensorFlow is imported once per quantize run.

The converters run in a child (``hartool.export.worker --serve``) so that a converter segfault cannot take
hartool down. Importing TensorFlow takes ~5 s and a `quantize` makes 8 to 18 artifacts, so one child takes
the jobs one after the other, and only a job that kills it (a crash, an exception, a timeout) costs a new
one for the jobs after it. A failed job's reason is read from what the child wrote to stderr since that job
began, so an earlier job's warnings are never blamed.

Protocol: the parent writes a job file's path and a newline to the child's stdin; the child converts, writes
the artifact and ``job["result"]``, and answers one line ``ok`` on its protocol pipe. End of file on that pipe
means the child died, and its exit status says how.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from ..core.child import child_env, describe_exit

WORKER = "hartool.export.worker"
_CLOSE_TIMEOUT_S = 10.0


class ConverterPool:
    """One converter child at a time, (re)started on demand; use as a context manager."""

    def __init__(self, workdir: Path, timeout_s: float) -> None:
        self._workdir, self._timeout_s = workdir, timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self.started = 0  # children started: 1 when no job killed one

    def __enter__(self) -> ConverterPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        self._stderr = tempfile.TemporaryFile("w+", dir=self._workdir)
        self._proc = subprocess.Popen([sys.executable, "-m", WORKER, "--serve"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=child_env())
        self.started += 1
        return self._proc

    def run(self, job: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Run one conversion; returns (result, None) or (None, one-line reason)."""
        tag = f"{job['format']}-{job['mode']}{'-unrolled' if job.get('unroll') else ''}"
        job_path = self._workdir / f"{tag}.job.json"
        job["result"] = str(self._workdir / f"{tag}.result.json")
        job_path.write_text(json.dumps(job))
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert self._stderr is not None and proc.stdin is not None and proc.stdout is not None
        err_from = self._stderr.seek(0, 2)  # this job's stderr starts here
        try:
            proc.stdin.write(f"{job_path}\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # the child died before taking the job: its exit status below says why
        answer = self._answer(proc.stdout)
        if answer is None:
            self._discard()
            return None, f"converter timed out after {self._timeout_s:.0f} s"
        if answer != "ok" or not Path(job["out"]).is_file():
            return None, self._failure(proc, err_from, answered=answer == "ok")
        return json.loads(Path(job["result"]).read_text()), None

    def _answer(self, pipe: IO[str]) -> str | None:
        """The child's one-line answer ("" at end of file), or None when the job's time ran out."""
        # One wait for the whole job: select() resumes after a signal with the time that is left (PEP 475).
        ready, _, _ = select.select([pipe], [], [], self._timeout_s)
        return pipe.readline().strip() if ready else None

    def _failure(self, proc: subprocess.Popen[str], err_from: int, answered: bool) -> str:
        """Why the job failed: the child's exit status and what it wrote to stderr during this job.

        ``answered``: the child said "ok" but wrote no artifact; it is alive, so its status is 0.
        """
        try:
            code = 0 if answered else proc.wait(timeout=_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = 1
        assert self._stderr is not None
        self._stderr.seek(err_from)
        text = self._stderr.read()
        self._discard()
        return describe_exit(code, text, who="converter ")

    def _discard(self) -> None:
        """Kill and forget the current child (after a failure or a timeout); the next job starts a new one."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(timeout=_CLOSE_TIMEOUT_S)
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._stderr is not None:
            self._stderr.close()
        self._proc, self._stderr = None, None

    def close(self) -> None:
        """End the child: end of its stdin lets it exit; one that does not is killed."""
        if self._proc is not None and self._proc.poll() is None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=_CLOSE_TIMEOUT_S)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self._discard()
