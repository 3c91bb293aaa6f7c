"""The reader thread: owns a port, decodes its bytes and hands batches and events to the stream loop through a bounded queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from hartool.core.errors import WireError
from hartool.wire.autodetect import (
    PROTOCOLS,
    AutoDecoder,
    Decoder,
    decoder_counters,
    make_decoder,
    protocol_of,
    take_predictions,
)
from hartool.wire.batch import ColumnLayout, DecodedBatch, DevicePrediction
from hartool.wire.events import ReaderEvent, ReaderStats
from hartool.wire.handoff import Handoff
from hartool.wire.port import DeviceGone, Port

__all__ = ["BAUD_HINT", "LISTEN_HINT", "ReaderThread"]

BAUD_HINT = (
    "receiving bytes but no valid {what}: check --baud (device may use 9600/115200/230400) or --protocol"
)
LISTEN_HINT = "receiving bytes but no valid {what} yet: check the sender's format, --protocol or --columns"


class ReaderThread(threading.Thread):
    """A daemon thread that owns ``port``: reads it, decodes, and queues :class:`DecodedBatch` / :class:`ReaderEvent`
    / :class:`DevicePrediction` (a board that classifies by itself; queued like events, never dropped).

    The read loop never blocks on the consumer: when the bounded queue is full a batch is dropped and its
    samples are counted in ``dropped_queue`` and added to the ``dropped`` of the next batch that is
    queued, so the consumer always knows where the gaps are. Events are never dropped: they wait, in
    order, until the queue has room. File sources (``port.is_file``) and buffered ports (``port.buffered``:
    HTTP, MQTT) are the exception: the reader waits for room instead of dropping, because a replay has no
    real-time deadline and a buffered port refuses at its door what it cannot hold (so what it accepted
    is classified).

    With ``reconnect=True`` a vanished device is reopened (``opener``, default ``port.reopen``) with
    exponential backoff from ``backoff_initial`` to ``backoff_max`` seconds, at most
    ``max_reconnect_attempts`` times per disconnect (None: until stopped). The decoder starts fresh on every
    connection; the counters keep adding up.

    ``start_command`` (default ``b"s"``, the protocol's start byte) is written on every (re)connect, so a
    device waiting for its host starts streaming; ``b""`` sends nothing. Each queued batch carries
    ``received_ns``: ``time.perf_counter_ns()`` when the bytes completing it were read.
    """

    def __init__(
        self,
        port: Port,
        protocol: str = "auto",
        expected_channels: int | None = None,
        *,
        max_queue: int = 256,
        read_size: int = 8192,
        reconnect: bool = False,
        opener: Callable[[], Port] | None = None,
        max_reconnect_attempts: int | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        hint_bytes: int = 4096,
        start_command: bytes = b"s",
        channel_names: Sequence[str] | None = None,
        columns: ColumnLayout | None = None,
        time_unit: str | None = None,
    ) -> None:
        super().__init__(name=f"hartool-reader {port.name}", daemon=True)
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.port: Port | None = port
        self.protocol = protocol
        self.expected_channels = expected_channels
        self._decoder_kw = {"channel_names": channel_names, "columns": columns, "time_unit": time_unit}
        self.read_size = read_size
        self._opener = opener or (port.reopen if port.reopenable else None)
        # Sources that cannot come back (files, stdin) simply end. A listening port (tcp-listen, udp, http,
        # mqtt) always waits for its next client: a phone that drops out is the normal case there.
        self.listening = port.listening
        self.reconnect = (reconnect or self.listening) and not port.is_file and self._opener is not None
        if self.listening and not reconnect:
            max_reconnect_attempts = None
        self.max_reconnect_attempts = max_reconnect_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.hint_bytes = hint_bytes
        self.start_command = start_command

        #: The fatal error that ended the thread (also delivered as an "error" event), or None.
        self.error: WireError | None = None
        #: Why the thread ended: "eof" | "disconnected" | "gave_up" | "error" | "stopped" (None while running).
        self.end_reason: str | None = None
        #: The last baud / protocol hint, if one was given.
        self.hint: str | None = None
        self.last_reconnect_error: str | None = None

        self._stop_event = threading.Event()
        self.handoff = Handoff(max_queue, self._stop_event)
        self._done = threading.Event()
        self._lock = threading.Lock()  # guards the decoder swap and counter snapshots
        self._base: dict[str, int] = {}
        self._bytes = self._dropped_wire = self._disconnects = self._reconnects = 0
        self._port_counters: dict[str, int] = {}
        self._decoder = self._connection(port)

    # ----------------------------------------------------------------------------------------------------
    # Consumer side (any thread)

    def get(self, timeout: float = 0.1) -> DecodedBatch | ReaderEvent | DevicePrediction | None:
        """The next batch or event in arrival order, or None if none came within ``timeout``.

        Raises the fatal :class:`WireError` (wrong channel count, ...) when its event is reached, so the
        batches before it are still delivered first.
        """
        item = self.handoff.get(timeout, self._done.is_set())
        if isinstance(item, ReaderEvent) and item.kind == "error" and item.error is not None:
            raise item.error
        return item

    @property
    def finished(self) -> bool:
        """The thread ended and everything it produced was taken with :meth:`get`."""
        return self._done.is_set() and self.handoff.empty()

    def raise_if_failed(self) -> None:
        """Raise the fatal error now (for a consumer that does not wait for its turn in the queue)."""
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to end, wait up to ``timeout`` s; True if it ended (the port is then closed)."""
        self._stop_event.set()
        if self.ident is None:  # never started: the port is still ours to close
            self._close_port()
            self._done.set()
            return True
        self.join(timeout)
        return not self.is_alive()

    def send(self, data: bytes) -> bool:
        """Write host command bytes (``b"b"``, ``b"t"``, ...) to the device; False if there is no device now."""
        port = self.port
        if port is None:
            return False
        try:
            port.write(data)
        except WireError:
            return False
        return True

    def stats(self) -> ReaderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            c = self._totals()
            protocol = protocol_of(self._decoder)
            return ReaderStats(
                bytes_read=self._bytes,
                samples=c.get("samples", 0),
                batches=self.handoff.batches,
                dropped_queue=self.handoff.dropped_queue,
                dropped_wire=self._dropped_wire,
                lines=c.get("lines", 0),
                bad_lines=c.get("bad_lines", 0),
                header_lines=c.get("header_lines", 0),
                frames=c.get("frames", 0),
                bad_frames=c.get("bad_frames", 0),
                seq_gaps=c.get("seq_gaps", 0),
                discarded_bytes=c.get("discarded_bytes", 0),
                disconnects=self._disconnects,
                reconnects=self._reconnects,
                protocol=protocol,
                hint=self.hint,
                predictions=c.get("predictions", 0),
                bad_predictions=c.get("bad_predictions", 0),
            )

    def decoder_extra(self) -> dict[str, int]:
        """Counters of the JSON decoder (``bad_batches``, ``unknown_sensors``) summed over connections."""
        with self._lock:
            c = self._totals()
        return {k: c.get(k, 0) for k in ("bad_batches", "unknown_sensors")}

    def _totals(self) -> dict[str, int]:
        """Decoder counters over every connection so far (call with the lock held)."""
        c = dict(self._base)
        for k, v in decoder_counters(self._decoder).items():
            c[k] = c.get(k, 0) + v
        return c

    def port_counters(self) -> dict[str, int]:
        """The port's own counters (``counters()`` of listening ports: connections, bad batches, ...)."""
        port = self.port
        if port is not None:
            try:
                self._port_counters = dict(port.counters())
            except (OSError, WireError):
                pass
        return dict(self._port_counters)

    def __enter__(self) -> ReaderThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------------
    # Reader thread

    def _connection(self, port: Port) -> Decoder | AutoDecoder:
        """Start the per-connection state for ``port``; returns its fresh decoder."""
        self._conn_bytes = 0
        self._hinted = self._noted = False
        self._announced_protocol: str | None = None
        # Files and listening sockets start at a line boundary; a serial port may start mid-line.
        whole = port.is_file or port.listening
        kw = dict(self._decoder_kw)
        kw["time_unit"] = kw["time_unit"] or port.time_unit
        return make_decoder(self.protocol, self.expected_channels, skip_first_line=not whole,
                            **kw)  # type: ignore[arg-type]

    def run(self) -> None:
        try:
            self._say_start()
            self.end_reason = self._serve()
        except WireError as exc:
            self.error = exc
            self.end_reason = "error"
            self._emit(ReaderEvent("error", str(exc), final=True, error=exc))
        finally:
            self._close_port()
            self.handoff.flush()
            self._done.set()

    def _serve(self) -> str:
        while True:
            reason = self._pump()
            if reason != "disconnected":
                return reason
            if not self.reconnect:
                return reason
            if not self._reopen():
                if self._stop_event.is_set():
                    return "stopped"
                n = self.max_reconnect_attempts
                self._emit(
                    ReaderEvent(
                        "gave_up",
                        f"gave up reconnecting after {n} attempts: {self.last_reconnect_error}",
                        final=True,
                    )
                )
                return "gave_up"

    def _pump(self) -> str:
        """Read and decode until the source ends, the device goes away or stop() is called."""
        port = self.port
        assert port is not None
        while not self._stop_event.is_set():
            try:
                data = port.read(self.read_size)
            except (DeviceGone, OSError) as exc:  # OSError covers serial.SerialException from other ports
                self._disconnects += 1
                self._close_port()
                self._emit(ReaderEvent("disconnected", str(exc), final=not self.reconnect))
                return "disconnected"
            received_ns = time.perf_counter_ns()
            for note in port.take_notes():  # refusals at the door: the first of each kind, with the peer
                self._emit(ReaderEvent("door", note))
            if not data:
                if port.eof:
                    self._emit(ReaderEvent("eof", f"{port.name}: end of data", final=True))
                    return "eof"
                self.handoff.flush()
                continue
            self._bytes += len(data)
            self._conn_bytes += len(data)
            with self._lock:
                batch = self._decoder.feed(data)
                predictions = take_predictions(self._decoder)
            detected = self._decoder.protocol if isinstance(self._decoder, AutoDecoder) else None
            if detected is not None and detected != self._announced_protocol:
                # Detection may run again after a bad start (random bytes, then the real stream).
                verb = "switched to" if self._announced_protocol else "detected"
                self._announced_protocol = detected
                self._emit(ReaderEvent("protocol", f"{verb} {detected} protocol"))
            self._announce_note()
            for pred in predictions:  # small and rare: queued in order like events, never dropped
                pred.received_ns = received_ns
                self.handoff.emit(pred)
            if batch is not None:
                batch.received_ns = received_ns
                self._deliver(batch)
            elif not self._hinted and self._conn_bytes >= self.hint_bytes and not port.buffered:
                self._check_hint()  # (a buffered port's door already checked every message it passed on)
        return "stopped"

    def _announce_note(self) -> None:
        """Tell once per connection how a text layout was read when it was guessed (extra fields ignored)."""
        inner = self._decoder.inner if isinstance(self._decoder, AutoDecoder) else self._decoder
        note = getattr(inner, "note", None)
        if note and not self._noted:
            self._noted = True
            self._emit(ReaderEvent("protocol", note))

    def _say_start(self) -> None:
        # A device that waits for the host (firmware / simulator started paused) begins on 's'; one that
        # streams already ignores it. A failed write shows up as DeviceGone on the next read.
        if self.start_command:
            self.send(self.start_command)

    def _check_hint(self) -> None:
        counters = decoder_counters(self._decoder)
        if counters.get("samples", 0) or counters.get("predictions", 0):
            self._hinted = True
            return
        if counters.get("header_lines", 0) and not counters.get("bad_lines", 0):
            return  # clean text that is not numeric (a banner or an error message): not a baud problem
        self._hinted = True
        what = {"text": "lines", "binary": "frames"}.get(protocol_of(self._decoder) or "", "lines or frames")
        # A listening port has no baud rate: the sender's format is what to check there.
        self.hint = (LISTEN_HINT if self.listening else BAUD_HINT).format(what=what)
        self._emit(ReaderEvent("hint", self.hint))

    def _deliver(self, batch: DecodedBatch) -> None:
        self._dropped_wire += batch.dropped
        port = self.port
        self.handoff.deliver(batch, wait=port is not None and (port.is_file or port.buffered))

    def _emit(self, event: ReaderEvent) -> None:
        self.handoff.emit(event)

    def _close_port(self) -> None:
        if self.port is not None:
            self.port_counters()  # keep the last counters of a port that is going away
        port, self.port = self.port, None
        if port is not None:
            port.close()

    def _reopen(self) -> bool:
        """Reopen with exponential backoff; on success the decoder starts over and a "reconnected" event is queued."""
        assert self._opener is not None
        delay = self.backoff_initial
        attempts = 0
        while not self._stop_event.is_set():
            if self._stop_event.wait(delay):
                return False
            attempts += 1
            try:
                port = self._opener()
            except WireError as exc:
                self.last_reconnect_error = str(exc)
                if self.max_reconnect_attempts is not None and attempts >= self.max_reconnect_attempts:
                    return False
                delay = min(delay * 2, self.backoff_max)
                continue
            with self._lock:
                for k, v in decoder_counters(self._decoder).items():
                    self._base[k] = self._base.get(k, 0) + v
                self._decoder = self._connection(port)
            self.port = port
            self._reconnects += 1
            self._say_start()
            self._emit(ReaderEvent("reconnected", f"reconnected to {port.name} (attempt {attempts})"))
            return True
        return False
