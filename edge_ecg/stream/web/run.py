"""``stream --web``: the few steps the command takes, kept out of the command's own module.

:func:`open_web` binds the server before anything else runs (a busy port or a bad address
is one line, before the model loads); :meth:`WebRun.attach` adds the page's publisher to the
run's view and event callback; :meth:`WebRun.finish` tells the pages why the run ended and
stops the server once they have read it.
"""

from __future__ import annotations

import re
import threading

from edge_ecg.errors import ConfigError

TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{8,128}")


class WebRun:
    """A bound :class:`~edge_ecg.stream.web.server.WebServer` with its hub, and later its publisher."""

    def __init__(self, server, hub):
        self.server, self.hub = server, hub
        self.publisher = None

    @property
    def url(self) -> str:
        return self.server.url

    def attach(self, pipeline, source_name: str, view=None, title: str = "edge-ecg stream"):
        """``(view, on_event)`` for :func:`~edge_ecg.stream.runner.run_stream`: ``view`` (the
        terminal's, or None) and the page's publisher as one, and the publisher's beat callback.
        Starts serving."""
        from edge_ecg.stream.web.hub import ViewTee, WebPublisher

        self.publisher = WebPublisher(self.hub, pipeline, source_name, title=title)
        self.server.start()
        return ViewTee(view, self.publisher), self.publisher.on_event

    def finish(self, reason: str, linger_s: float = 1.0) -> None:
        """The run ended (``reason``): an ``end`` message, up to ``linger_s`` s for pages to read it, then stop."""
        if self.publisher is not None:
            self.publisher.finish(reason)
        self.server.stop(linger_s=linger_s)


def open_web(spec: str | None, token: str | None, max_clients: int = 8) -> WebRun | None:
    """``--web [HOST:]PORT`` and ``--web-token``: a bound server (None without ``--web``)."""
    if spec is None:
        if token is not None:
            raise ConfigError("--web-token needs --web [HOST:]PORT")
        return None
    if token is not None and not TOKEN_RE.fullmatch(token):
        raise ConfigError("--web-token: 8-128 characters of letters, digits and . _ ~ - (it goes in the page's URL)")
    from edge_ecg.stream.web.hub import Hub
    from edge_ecg.stream.web.server import WebServer, parse_bind

    host, port = parse_bind(spec)
    hub = Hub()
    return WebRun(WebServer(hub, host, port, token=token, max_clients=max_clients).bind(), hub)


class WebStream:
    """A stream with a page, in a background thread (tests, screenshots, benchmarks): what
    ``edge-ecg stream --web`` does, with the source, model and port chosen by the caller.

    ``source`` -> pipeline (``classifier``, ``adapter``) -> page at :attr:`url` (``host``, any
    free port; ``token`` as ``--web-token``; ``consumers`` as :func:`~edge_ecg.stream.runner.run_stream`'s). :meth:`start` runs it; :meth:`join` waits and
    gives the run's summary; the pages are told when it ended and the server serves on until
    :meth:`stop`.
    """

    def __init__(self, source, classifier, token: str | None = None, host: str = "127.0.0.1", max_beats=None,
                 duration_s=None, adapter=None, consumers: tuple = ()):
        self.source, self.classifier = source, classifier
        self.consumers = tuple(consumers)
        from edge_ecg.stream.pipeline import StreamPipeline

        self.web = open_web(f"{host}:0", token)
        self.pipeline = StreamPipeline(classifier, adapter=adapter)
        self.max_beats, self.duration_s = max_beats, duration_s
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
        from edge_ecg.stream.runner import run_stream

        try:
            self.summary = run_stream(self.source, self.pipeline, duration_s=self.duration_s,
                                      max_beats=self.max_beats, view=self.view, on_event=self.on_event,
                                      consumers=self.consumers)
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
