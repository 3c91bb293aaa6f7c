"""The bounded hand-off between the reader thread and its consumer: batches may be dropped (counted, and the
gap marked on the next batch), events and device predictions never are (they wait, in order, until there is room)."""

from __future__ import annotations

import collections
import queue
import threading

from hartool.wire.batch import DecodedBatch, DevicePrediction
from hartool.wire.events import ReaderEvent

__all__ = ["Handoff"]

Item = DecodedBatch | ReaderEvent | DevicePrediction


class Handoff:
    """A bounded queue of batches and events; ``stop`` cuts any wait short."""

    def __init__(self, max_queue: int, stop: threading.Event) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=max_queue)
        self.batches = 0  # put into the queue
        self.dropped_queue = 0  # samples decoded, then dropped because the consumer fell behind
        self._pending_drop = 0  # dropped samples not yet reported in a queued batch
        self._events: collections.deque[ReaderEvent | DevicePrediction] = collections.deque()
        self._stop = stop

    def get(self, timeout: float, producer_done: bool) -> Item | None:
        """The next item, or None if none came within ``timeout``."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            # Events the producer could not queue before it ended (the queue was full): it is gone, so
            # nothing races with this pop.
            if producer_done and self._events:
                return self._events.popleft()
            return None

    def empty(self) -> bool:
        return self.queue.empty() and not self._events

    def deliver(self, batch: DecodedBatch, wait: bool) -> None:
        """Queue ``batch`` after the waiting events; ``wait`` (replay) waits for room instead of dropping."""
        n = batch.samples
        carry = self._pending_drop + batch.dropped
        if self._pending_drop and 0 not in batch.breaks:
            batch.breaks = (0, *batch.breaks)  # the queue lost samples just before these
        batch.dropped = carry
        if wait:
            # Bounded waits, so stop() still gets through.
            self.flush(block=True)
            while not self._stop.is_set():
                try:
                    self.queue.put(batch, timeout=0.1)
                except queue.Full:
                    continue
                self._queued()
                return
            return
        if self.flush():
            try:
                self.queue.put_nowait(batch)
            except queue.Full:
                pass
            else:
                self._queued()
                return
        self.dropped_queue += n
        self._pending_drop = carry + n

    def _queued(self) -> None:
        self.batches += 1
        self._pending_drop = 0

    def emit(self, event: ReaderEvent | DevicePrediction) -> None:
        self._events.append(event)
        self.flush()

    def flush(self, block: bool = False) -> bool:
        """Queue waiting events in order; True when none is left waiting."""
        while self._events:
            try:
                if block and not self._stop.is_set():
                    self.queue.put(self._events[0], timeout=0.1)
                else:
                    self.queue.put_nowait(self._events[0])
            except queue.Full:
                if block and not self._stop.is_set():
                    continue
                return False
            self._events.popleft()
        return True
