"""Any source in its own thread behind a bounded queue: :class:`ThreadedReader` (a consumer slower
than the device drops, and counts, samples instead of growing memory)."""

from __future__ import annotations

import queue
import threading

from edge_ecg.stream.sources.base import Chunk, Source


class ThreadedReader:
    """Runs ``source.chunks()`` in a thread behind a queue of at most ``max_chunks`` chunks.

    With ``drop`` (for live sources), a full queue drops the newest chunk instead of
    blocking the device reader: the samples are counted in :attr:`dropped_samples` and the
    next delivered chunk carries a gap (the pipeline resets). Without ``drop`` the reader
    waits (replay at full speed: nothing is lost). An exception in the reader (a device
    error) is re-raised by :meth:`get`.
    """

    def __init__(self, source: Source, max_chunks: int = 256, drop: bool | None = None):
        self.source = source
        self.drop = source.live if drop is None else bool(drop)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_chunks)))
        self.dropped_samples = 0
        self.dropped_chunks = 0
        self._pending_gap = False
        self._pending_lost = 0
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-ecg-reader", daemon=True)

    def start(self) -> "ThreadedReader":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for chunk in self.source.chunks():
                if self._pending_gap:
                    chunk.gap = True
                    chunk.lost += self._pending_lost
                if self.drop:
                    try:
                        self.queue.put_nowait(chunk)
                    except queue.Full:
                        self.dropped_samples += len(chunk)
                        self.dropped_chunks += 1
                        self._pending_gap = True
                        self._pending_lost += len(chunk)
                        continue
                else:
                    while not self.source.stopped:
                        try:
                            self.queue.put(chunk, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                self._pending_gap, self._pending_lost = False, 0
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            self._done.set()

    def get(self, timeout: float = 0.1) -> Chunk | None:
        """The next chunk, or None if none came within ``timeout`` s; raises the reader's error."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            if self._error is not None:
                raise self._error
            return None

    @property
    def finished(self) -> bool:
        """True when the source has ended and every chunk has been taken."""
        if self._error is not None and self.queue.empty():
            raise self._error
        return self._done.is_set() and self.queue.empty()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the source and wait (up to ``timeout`` s) for the thread; closes the source."""
        self.source.stop()
        self._thread.join(timeout)
        self.source.close()
