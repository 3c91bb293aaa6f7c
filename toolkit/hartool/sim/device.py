"""A virtual IMU on a pseudo-terminal: streams recorded samples as text lines or binary frames, with faults on demand.

``hartool simulate``, the demo and the I/O tests use it in place of a board: pyserial opens ``port_path``
exactly as it would open ``/dev/ttyACM0``. The device side behaves like the firmware in ``firmware_bridge``:
the same encodings, a binary ``seq`` that keeps counting over lost samples, and the host command bytes
``t`` (text), ``b`` (binary), ``s`` (start) and ``p`` (pause).

Flow control: a pty has a small kernel buffer (a few KB); when the host reads too slowly (or no host has
the port open) the device's writes wait (with timeouts, so ``stop()`` never hangs) instead of losing bytes
the way a real UART would overflow, and the device then carries on at its rate from where it stalled rather
than bursting out more than a second of backlog. Sample timestamps are the device clock (sample index / ``rate_hz``), so they do not depend on
how fast the stream is replayed.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import select
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hartool.sim.board import ClassifyingBoard
from hartool.wire.frames import (
    ACC_SCALE_G,
    BINARY_VERSION,
    FLAG_TIMESTAMP,
    GYRO_SCALE_RAD_S,
    cobs_encode,
    crc16_ccitt,
    quantize,
)

__all__ = ["DEFAULT_SCALES", "DeviceOptions", "FaultSpec", "VirtualDevice"]

#: Binary scales of the 6 channels, as the firmware sends them (acc in g, gyro in rad/s per count).
DEFAULT_SCALES: tuple[float, ...] = (ACC_SCALE_G,) * 3 + (GYRO_SCALE_RAD_S,) * 3

# Frame header of PROTOCOL.md (version, flags, seq u16, t_ms u32, nch, nsamp), little endian. Encoding a
# batch here (one quantize call for all its samples) is ~8x faster than codec.encode_frame per frame;
# the I/O tests check that both produce the same bytes.
_HEADER = struct.Struct("<BBHIBB")
_MAX_BATCH_SAMPLES = 512  # per write: keeps a burst under ~25 KB of text and the command check frequent
_POLL_S = 0.05  # longest sleep between checks of stop/commands
# A host that reads nothing for this long is not coming back for the rest of the buffer.
_DRAIN_STALL_S = 5.0
_DRAIN_QUIET_S = 0.2  # the host queue must stay empty this long before the master closes (see _disconnect)


@dataclass(frozen=True)
class FaultSpec:
    """Faults the virtual device injects, each decided per sample from the device's seeded RNG.

    * ``garbage_prob``: a burst of 1..16 random bytes before the sample, ended by the protocol's delimiter
      (newline / 0x00) so it reads as one bad line / bad frame and costs no sample.
    * ``drop_prob``: the sample is not sent (binary: ``seq`` still advances, so the host counts the gap).
    * ``truncate_prob``: only the first half of the line / frame is sent, then the delimiter (one bad
      line / frame; binary: also a ``seq`` gap).
    * ``nan_prob``: one value of the line is NaN (text only; binary has no NaN, so it is not injected there).
    * ``noise_std``: gaussian noise added to every value (before quantisation).
    * ``disconnect_after``: close the pty after this many samples, as if the board were unplugged. The
      device first waits for the host to read what is buffered (as long as the host keeps reading), so the
      loss is exactly the samples never sent.
    * ``clean_start``: no garbage/drop/truncate/NaN on the first samples, so the host can lock on first.

    In binary mode with several samples per frame, drop and truncate are decided by a frame's first sample.
    """

    garbage_prob: float = 0.0
    drop_prob: float = 0.0
    truncate_prob: float = 0.0
    nan_prob: float = 0.0
    noise_std: float = 0.0
    disconnect_after: int | None = None
    clean_start: int = 0

    def __post_init__(self) -> None:
        for name in ("garbage_prob", "drop_prob", "truncate_prob", "nan_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"FaultSpec.{name} must be in [0, 1], got {p}")
        if not self.noise_std >= 0.0:
            raise ValueError(f"FaultSpec.noise_std must be >= 0, got {self.noise_std}")
        if self.disconnect_after is not None and self.disconnect_after < 0:
            raise ValueError("FaultSpec.disconnect_after must be >= 0")
        if self.clean_start < 0:
            raise ValueError("FaultSpec.clean_start must be >= 0")


@dataclass(frozen=True)
class DeviceOptions:
    """How a :class:`VirtualDevice` streams.

    ``speed``: real time x speed (0 or inf: as fast as the host reads). ``protocol``: ``text`` or ``binary``
    (the host may switch it). ``timestamps``: send the device clock (ms). ``samples_per_frame``: binary
    samples per frame. ``loop``: start over at the end. ``decimals``: text precision. ``scales``: binary
    scale per channel. ``banner``: a first line/0x00 the host may cut. ``log_sent``: keep the indices of
    the samples sent intact (``sent_indices``). ``paused``: wait for the host's ``s``. ``board``: a classifying
    board (sim/board.py) that sends a prediction message per window, instead of the samples unless its
    ``send_samples``; without samples on the wire the garbage, drop and truncate faults hit the predictions.
    """

    rate_hz: float = 50.0
    speed: float = 1.0
    protocol: str = "text"
    timestamps: bool = True
    faults: FaultSpec = field(default_factory=FaultSpec)
    seed: int = 0
    samples_per_frame: int = 1
    loop: bool = False
    decimals: int = 4
    scales: tuple[float, ...] | np.ndarray = DEFAULT_SCALES
    banner: bool = True
    log_sent: bool = False
    paused: bool = False
    board: ClassifyingBoard | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("text", "binary"):
            raise ValueError(f"protocol must be 'text' or 'binary', got {self.protocol!r}")
        if not self.rate_hz > 0 or not math.isfinite(self.rate_hz):
            raise ValueError(f"rate_hz must be a positive number, got {self.rate_hz}")
        if not 1 <= self.samples_per_frame <= 255:
            raise ValueError("samples_per_frame must be in 1..255")
        if self.speed < 0 or math.isnan(self.speed):
            raise ValueError("speed must be >= 0 (0 or inf: as fast as possible)")


@dataclass
class _Pass:
    """Fault decisions for one pass over the input (drawn up front, so they never depend on timing)."""

    values: np.ndarray  # float64 (n, 6), noise applied
    drop: np.ndarray  # bool (n,)
    truncate: np.ndarray  # bool (n,)
    nan_col: np.ndarray  # int (n,), -1 = none
    garbage: dict[int, bytes]  # index in pass -> burst sent before that sample


class VirtualDevice:
    """A pseudo-terminal that streams ``values`` like an IMU board; open ``port_path`` with pyserial.

    Start it after the host opened the port, or create it ``paused`` so it waits for the host's ``s``:
    pyserial discards input that arrived before ``open()``, as a real port would. Streaming begins with a
    one-line banner in text mode (the host decoder ignores a first line that may have been cut), a 0x00 in
    binary mode so the first frame decodes.
    """

    def __init__(self, values: np.ndarray, options: DeviceOptions | None = None, **kw: Any) -> None:
        """``options`` (or its fields as keywords, e.g. ``VirtualDevice(values, speed=0, paused=True)``)."""
        opts = options if options is not None else DeviceOptions(**kw)
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"values must be a non-empty (n, channels) array, got shape {arr.shape}")
        self.options = opts
        self.values = arr
        self.rate_hz, self.speed = float(opts.rate_hz), float(opts.speed)
        self.protocol = opts.protocol  # switched by the host's 't' / 'b'
        self.timestamps, self.faults, self.loop = opts.timestamps, opts.faults, opts.loop
        self.samples_per_frame, self.decimals = int(opts.samples_per_frame), int(opts.decimals)
        self._scales = np.asarray(opts.scales, dtype=np.float32).reshape(-1)
        if self._scales.size != arr.shape[1]:
            raise ValueError(f"{self._scales.size} scales for {arr.shape[1]} channels")
        self._scale_bytes = self._scales.astype("<f4").tobytes()
        self._banner_pending = opts.banner
        self._rng = np.random.default_rng(opts.seed)
        self._pass: _Pass | None = None
        self._pass_no = -1

        # Counters (written by the device thread only).
        self.samples_sent = 0  # written intact: the host should decode exactly these
        self.samples_dropped_injected = 0
        self.truncated = 0
        self.nan_injected = 0
        self.garbage_bytes = 0
        self.garbage_bursts = 0
        self.frames_sent = 0
        self.bytes_written = 0
        self.commands_received = 0
        self.predictions_sent = 0  # prediction messages written intact (a classifying board)
        self.predictions_dropped = 0  # not sent (a fault)
        self.predictions_truncated = 0  # half sent, then the delimiter (a fault)
        self.disconnected = False
        #: Global indices (sample k of pass p = p * n + k) of the samples sent intact, if ``log_sent``.
        self.sent_indices: list[int] | None = [] if opts.log_sent else None
        #: An OSError that ended the device thread, if any.
        self.error: OSError | None = None

        self._cursor = 0  # next global sample index
        self._running = not opts.paused  # 's' / 'p'
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._open_pty()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        # Raw on both ends: no echo of host commands, no CR/LF translation of binary frames.
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master = master
        # Holding our own slave descriptor keeps the pty alive and its settings in place while no host has
        # it open, and lets the device see how many bytes the host has not read yet (TIOCINQ).
        self._slave = slave
        self.port_path = os.ttyname(slave)

    # ----------------------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> VirtualDevice:
        """Begin streaming on a background thread (once)."""
        if self._closed:
            raise RuntimeError("device is closed")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"virtual-imu {self.port_path}", daemon=True
            )
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until all samples were sent (or the device stopped or disconnected); True if it finished."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop streaming; True if the device thread ended within ``timeout``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Stop and release the pty (a host still reading it sees the device disappear)."""
        self.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._master, self._slave):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass  # already gone (disconnect fault closed the master)
            self._master = self._slave = -1

    def __enter__(self) -> VirtualDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """False while paused by a host 'p' command."""
        return self._running

    # ----------------------------------------------------------------------------------------------------
    # Fault plan

    def _plan(self, pass_no: int) -> _Pass:
        if self._pass_no != pass_no:
            n = len(self.values)
            f = self.faults
            rng = self._rng
            u = rng.random((n, 4))
            values = self.values
            if f.noise_std > 0:
                values = values + rng.normal(0.0, f.noise_std, size=values.shape)
            nan_col = rng.integers(0, values.shape[1], size=n)
            start = pass_no * n
            eligible = np.arange(start, start + n) >= f.clean_start
            drop = (u[:, 0] < f.drop_prob) & eligible
            truncate = (u[:, 1] < f.truncate_prob) & eligible & ~drop
            nan_mask = (u[:, 2] < f.nan_prob) & eligible & ~drop & ~truncate
            garbage: dict[int, bytes] = {}
            g_idx = np.flatnonzero((u[:, 3] < f.garbage_prob) & eligible)
            if len(g_idx):
                lengths = rng.integers(1, 17, size=len(g_idx))
                pool = rng.integers(1, 256, size=int(lengths.sum()), dtype=np.uint8)
                pool[pool == 0x0A] = 0x0B  # never a newline inside a burst: it would split the bad line
                offsets = np.concatenate([[0], np.cumsum(lengths)])
                for k, i in enumerate(g_idx):
                    # 0xFF first: the burst is always a non-numeric, non-printable token (a bad line).
                    garbage[int(i)] = b"\xff" + pool[offsets[k] : offsets[k + 1]].tobytes()
            self._pass = _Pass(values, drop, truncate, np.where(nan_mask, nan_col, -1), garbage)
            self._pass_no = pass_no
        assert self._pass is not None
        return self._pass

    # ----------------------------------------------------------------------------------------------------
    # Encoding

    def _t_ms(self, g: int) -> int:
        return int(round(g * 1000.0 / self.rate_hz)) & 0xFFFFFFFF

    def _garbage(self, burst: bytes, binary: bool) -> bytes:
        self.garbage_bursts += 1
        self.garbage_bytes += len(burst)
        return burst + (b"\x00" if binary else b"\r\n")

    def _encode_text(self, start: int, stop: int) -> tuple[bytes, list[int]]:
        """Samples [start, stop) (global indices, one pass) as text lines; returns bytes and intact indices."""
        n = len(self.values)
        plan = self._plan(start // n)
        i0, i1 = start % n, start % n + (stop - start)
        nch = self.values.shape[1]
        fmt_line = ",".join([f"%.{self.decimals}f"] * nch) + "\r\n"
        if self.timestamps:
            fmt_line = "%d," + fmt_line
        parts: list[bytes] = []
        intact: list[int] = []
        run_start = i0

        def flush_run(a: int, b: int) -> None:
            # A run of clean samples is formatted with one %-operation (C speed) instead of one per value.
            if b <= a:
                return
            block = plan.values[a:b]
            if self.timestamps:
                ts = [self._t_ms(start + (k - i0)) for k in range(a, b)]
                flat: list[float | int] = []
                for t, row in zip(ts, block.tolist(), strict=True):
                    flat.append(t)
                    flat.extend(row)
            else:
                flat = block.ravel().tolist()
            parts.append(((fmt_line * (b - a)) % tuple(flat)).encode("ascii"))
            intact.extend(range(start + (a - i0), start + (b - i0)))

        special = sorted(
            {
                int(i)
                for i in np.flatnonzero(plan.drop[i0:i1] | plan.truncate[i0:i1] | (plan.nan_col[i0:i1] >= 0))
            }
            | {i - i0 for i in plan.garbage if i0 <= i < i1}
        )
        for off in special:
            i = i0 + off
            flush_run(run_start, i)
            run_start = i + 1
            data, ok = self._text_fault(plan, fmt_line, i, start + off)
            parts.append(data)
            if ok:
                intact.append(start + off)
        flush_run(run_start, i1)
        return b"".join(parts), intact

    def _text_fault(self, plan: _Pass, fmt_line: str, i: int, g: int) -> tuple[bytes, bool]:
        """Sample ``i`` of the pass (global index ``g``) with its faults: (bytes to send, sent intact)."""
        head = self._garbage(plan.garbage[i], binary=False) if i in plan.garbage else b""
        if plan.drop[i]:
            self.samples_dropped_injected += 1
            return head, False
        row = plan.values[i].copy()
        if plan.nan_col[i] >= 0:
            row[plan.nan_col[i]] = np.nan
        line = (fmt_line % tuple(([self._t_ms(g)] if self.timestamps else []) + row.tolist())).encode()
        if plan.truncate[i]:
            self.truncated += 1
            return head + line[: max(1, (len(line) - 2) // 2)] + b"\r\n", False
        if plan.nan_col[i] >= 0:
            self.nan_injected += 1
            return head + line, False
        return head + line, True

    def _encode_binary(self, start: int, stop: int) -> tuple[bytes, list[int]]:
        """Whole frames for samples [start, stop) (one pass); returns bytes and intact indices."""
        n = len(self.values)
        plan = self._plan(start // n)
        i0 = start % n
        counts = quantize(plan.values[i0 : i0 + (stop - start)], self._scales).astype("<i2")
        flags = FLAG_TIMESTAMP if self.timestamps else 0
        nch = counts.shape[1]
        spf = self.samples_per_frame
        parts: list[bytes] = []
        intact: list[int] = []
        for a in range(0, stop - start, spf):
            b = min(a + spf, stop - start)
            g = start + a
            i = i0 + a
            if i in plan.garbage:
                parts.append(self._garbage(plan.garbage[i], binary=True))
            if plan.drop[i]:
                self.samples_dropped_injected += b - a
                continue
            body = (
                _HEADER.pack(
                    BINARY_VERSION, flags, g & 0xFFFF, self._t_ms(g) if self.timestamps else 0, nch, b - a
                )
                + self._scale_bytes
                + counts[a:b].tobytes()
            )
            frame = cobs_encode(body + crc16_ccitt(body).to_bytes(2, "little")) + b"\x00"
            if plan.truncate[i]:
                self.truncated += b - a
                parts.append(frame[: max(1, (len(frame) - 1) // 2)] + b"\x00")
                continue
            parts.append(frame)
            self.frames_sent += 1
            intact.extend(range(g, g + (b - a)))
        return b"".join(parts), intact

    def _encode(self, start: int, end: int) -> tuple[bytes, list[int]]:
        """Samples [start, end) as the board sends them: sample lines / frames, its prediction messages, or both."""
        board = self.options.board
        if board is None or board.send_samples:
            data, intact = self._encode_binary(start, end) if self.protocol == "binary" else self._encode_text(start, end)
        else:
            data, intact = b"", []
        if board is not None:
            data += self._board_messages(board, start, end)
        return data, intact

    def _board_messages(self, board: ClassifyingBoard, start: int, end: int) -> bytes:
        """The board's prediction messages for samples [start, end) (one pass); faults hit them when no samples go."""
        n = len(self.values)
        plan = self._plan(start // n)
        i0, binary, faults = start % n, self.protocol == "binary", not board.send_samples
        parts: list[bytes] = []
        for off in range(end - start):
            i = i0 + off
            if faults and i in plan.garbage:
                parts.append(self._garbage(plan.garbage[i], binary))
            msg = board.push(plan.values[i], self._t_ms(start + off) if self.timestamps else None, self.protocol)
            if msg is None:
                continue
            if faults and plan.drop[i]:
                self.predictions_dropped += 1
                continue
            if faults and plan.truncate[i]:  # half a frame / line, then its delimiter: one bad frame / prediction line
                self.predictions_truncated += 1
                parts.append(msg[: max(1, (len(msg) - 1) // 2)] + (b"\x00" if binary else b"\r\n"))
                continue
            self.predictions_sent += 1
            parts.append(msg)
        return b"".join(parts)

    # ----------------------------------------------------------------------------------------------------
    # Device thread

    def _write_all(self, data: bytes) -> bool:
        """Write everything unless stopped; a full pty buffer waits (the host is slow), never forever."""
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                return False
            _, writable, _ = select.select([], [self._master], [], _POLL_S)
            if not writable:
                continue
            try:
                k = os.write(self._master, view)
            except BlockingIOError:
                continue
            self.bytes_written += k
            view = view[k:]
        return True

    def _handle_commands(self) -> None:
        try:
            data = os.read(self._master, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return  # no host has the slave open right now
            raise
        for byte in data:
            self.commands_received += 1
            if byte == ord("t") and self.protocol != "text":
                self.protocol = "text"
            elif byte == ord("b") and self.protocol != "binary":
                self.protocol = "binary"
                self._write_all(b"\x00")  # ends whatever the host had buffered, like the firmware
            elif byte == ord("s") and not self._running:
                self._running = True
                self._anchor()
            elif byte == ord("p"):
                self._running = False

    def _anchor(self) -> None:
        # Pacing restarts from "now": after a pause or a slow host the device does not burst to catch up
        # beyond what is already due.
        self._t0 = time.monotonic()
        self._base = self._cursor

    def _host_unread(self) -> int:
        buf = fcntl.ioctl(self._slave, termios.TIOCINQ, b"\x00\x00\x00\x00")
        return int(struct.unpack("I", buf)[0])

    def _disconnect(self) -> None:
        """Simulated unplug: let the host read what is buffered, then close the master.

        The wait follows the host's progress rather than the clock: a host on a loaded machine may need
        seconds to drain the buffer, and every byte it still reads is a sample not lost. Only a host that
        reads nothing for ``_DRAIN_STALL_S`` is given up on.
        """
        last_unread, stalled_since, quiet_since = -1, time.monotonic(), None
        while not self._stop.is_set():
            unread = self._host_unread()
            now = time.monotonic()
            # Empty for _DRAIN_QUIET_S, not just one reading: the kernel moves the bytes written last into the
            # host's queue from a worker thread, which a loaded machine can hold back for many milliseconds.
            quiet_since = (quiet_since or now) if unread == 0 else None
            if quiet_since is not None and now - quiet_since >= _DRAIN_QUIET_S:
                break
            if unread != last_unread:
                last_unread, stalled_since = unread, now
            elif now - stalled_since > _DRAIN_STALL_S:
                break
            time.sleep(0.005)
        with self._lock:
            if not self._closed and self._master >= 0:
                os.close(self._master)
                self._master = -1
        self.disconnected = True

    def _run(self) -> None:
        try:
            self._stream()
        except OSError as exc:
            self.error = exc
        finally:
            self._done.set()

    def _stream(self) -> None:
        n = len(self.values)
        total = None if self.loop else n
        limit = self.faults.disconnect_after
        if limit is not None:
            total = limit if total is None else min(total, limit)
        fast = self.speed == 0 or math.isinf(self.speed)
        rate = self.rate_hz * (self.speed if not fast else 1.0)

        self._anchor()
        while not self._stop.is_set():
            self._handle_commands()
            if total is not None and self._cursor >= total:
                break
            if not self._running:
                select.select([self._master], [], [], _POLL_S)
                continue
            if self._banner_pending and not self._send_banner():
                break
            spf = self.samples_per_frame if self.protocol == "binary" else 1
            end = self._batch_end(total, fast, rate, spf)
            if end <= self._cursor:
                next_due = self._t0 + (self._cursor + spf - 1 - self._base) / rate
                wait = min(max(next_due - time.monotonic(), 0.0), _POLL_S)
                select.select([self._master], [], [], wait)  # sleeps, but wakes for a host command
                continue
            start = self._cursor
            data, intact = self._encode(start, end)
            if not self._write_all(data):
                break
            self._cursor = end
            self.samples_sent += len(intact)
            if self.sent_indices is not None:
                self.sent_indices.extend(intact)
        if limit is not None and self._cursor >= limit and not self._stop.is_set():
            self._disconnect()

    def _send_banner(self) -> bool:
        """Sent when streaming first starts (after the host's 's' for a paused device), so the host has the
        port open and its decoder spends its "maybe cut" first line on the banner; False when stopped."""
        self._banner_pending = False
        if self.protocol == "binary":
            return self._write_all(b"\x00")
        return self._write_all(f"hartool virtual imu {self.rate_hz:g} Hz {self.values.shape[1]} channels\r\n".encode())

    def _batch_end(self, total: int | None, fast: bool, rate: float, spf: int) -> int:
        """The global index the next write goes up to (== the cursor: nothing is due yet)."""
        n = len(self.values)
        if fast:
            due = self._cursor + _MAX_BATCH_SAMPLES
        else:
            due = self._base + int((time.monotonic() - self._t0) * rate) + 1
            if due - self._cursor > max(rate, _MAX_BATCH_SAMPLES):
                # Over a second behind (nobody reading, or a slow host): like a stalled board, carry on
                # from now instead of bursting the whole backlog out once the host catches up.
                self._anchor()
                due = self._cursor + 1
        end = due if total is None else min(due, total)
        end = min(end, self._cursor + _MAX_BATCH_SAMPLES, (self._cursor // n + 1) * n)  # one pass
        if spf > 1:
            # Only whole frames leave the device, except the last one of the data.
            whole = self._cursor + (end - self._cursor) // spf * spf
            if whole > self._cursor:
                end = whole
            elif end != total and end % n != 0:
                end = self._cursor  # the next frame is not complete yet
        return end
