"""A stream with ``--web`` run in a thread of the test process: what ``edge-ecg stream --web`` does,
with the source, model and port chosen by the test (helper for test_web*.py and test_ble.py)."""

from __future__ import annotations

import threading

from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.runner import run_stream
from edge_ecg.stream.web.run import open_web


class WebStream:
    """``source`` -> pipeline (``classifier``) -> page at :attr:`url`, in a background thread.

    :meth:`start` binds (port 0: any free one) and runs; :attr:`summary` is the run's summary
    once :meth:`join` returns; the server stops ``linger_s`` after the run ends.
    """

    def __init__(self, source, classifier, token: str | None = None, host: str = "127.0.0.1", max_beats=None,
                 duration_s=None, linger_s: float = 30.0, adapter=None):
        self.source, self.classifier = source, classifier
        self.web = open_web(f"{host}:0", token)
        self.pipeline = StreamPipeline(classifier, adapter=adapter)
        self.max_beats, self.duration_s, self.linger_s = max_beats, duration_s, linger_s
        self.summary = None
        self.error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._done = threading.Event()

    @property
    def url(self) -> str:
        return self.web.url

    def start(self) -> "WebStream":
        self.view, self.on_event = self.web.attach(self.pipeline, self.source.name)
        self._thread.start()
        return self

    def _run(self) -> None:
        ended = "error"
        try:
            self.summary = run_stream(self.source, self.pipeline, duration_s=self.duration_s,
                                      max_beats=self.max_beats, view=self.view, on_event=self.on_event)
            ended = self.summary["ended"]
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            self._done.set()
            if self.web.publisher is not None:
                self.web.publisher.finish(ended)

    def join(self, timeout: float = 60.0) -> dict | None:
        self._done.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.summary

    def stop(self) -> None:
        """Stop the source and the server (idempotent)."""
        self.source.stop()
        self._done.wait(10)
        self.web.server.stop(linger_s=0.0)
