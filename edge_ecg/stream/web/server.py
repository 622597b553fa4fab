"""The page's HTTP server: Python's ``http.server`` in its own thread, Server-Sent Events, GET only.

Why the standard library: a Raspberry Pi in a drawer may be offline and has little memory;
``http.server`` with one thread per connection (``ThreadingHTTPServer``) and Server-Sent
Events (a long GET the browser's ``EventSource`` reads, reconnecting by itself) give a live
page with no dependency to install, no event loop shared with the classifier, and nothing a
browser can send that changes the stream.

Routes: ``/`` the page, ``/app.js`` and ``/app.css`` its files (``static/`` in the package),
``/events`` the live messages of the :class:`~edge_ecg.stream.web.hub.Hub` (a ``hello``
snapshot first), ``/state`` the snapshot as JSON (for scripts and ``curl``). Anything but GET
or HEAD is 405. With a token (always when bound beyond localhost) every route needs
``?token=...`` (else 403). At most ``max_clients`` live connections at a time (then 503);
a connection whose socket does not take a message within ``send_timeout_s`` is closed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edge_ecg.errors import ConfigError

log = logging.getLogger(__name__)

STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"), "/app.css": ("app.css", "text/css; charset=utf-8")}
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                      "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"}


def parse_bind(spec: str) -> tuple[str, int]:
    """``--web [HOST:]PORT`` -> ``(host, port)``: ``"8080"`` -> ``("127.0.0.1", 8080)``;
    ``"0.0.0.0:8080"``, ``"[::]:8080"``, ``"pi.local:8080"`` as given. A one-line
    :class:`ConfigError` for anything else."""
    text = str(spec).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") if host.startswith("[") else host
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port (tests)
        raise ConfigError(f"--web {spec}: give a port (1-65535; 0: any free one), or HOST:PORT, e.g. --web 8080 or --web 0.0.0.0:8080")
    if sep and not host:
        raise ConfigError(f"--web {spec}: the host before ':' is empty (e.g. --web 0.0.0.0:{port})")
    return host or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    """True for 127.x.x.x, ::1 and ``localhost``: only this machine can reach it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_static(name: str) -> bytes:
    """One of the page's files, shipped inside the package (``edge_ecg/stream/web/static``)."""
    return resources.files("edge_ecg.stream.web").joinpath("static", name).read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted stream takes its port back at once (TIME_WAIT)
    request_queue_size = 16


class WebServer:
    """Serves ``hub`` on ``host:port`` from a daemon thread (:meth:`start`, :meth:`stop`).

    ``token``: required on every request (``?token=``); None makes a random one when the
    host is not loopback (and none on localhost). ``max_clients`` live ``/events``
    connections at once; ``send_timeout_s`` for one message to leave; ``keepalive_s``
    between comments on an idle connection (so proxies and phones keep it open).
    """

    def __init__(self, hub, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
                 max_clients: int = 8, send_timeout_s: float = 5.0, keepalive_s: float = 15.0):
        self.hub = hub
        self.host, self.port = host, int(port)
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(12)
        self.token = token or None
        self.max_clients = int(max_clients)
        self.send_timeout_s = float(send_timeout_s)
        self.keepalive_s = float(keepalive_s)
        self.clients = 0
        self.counters = {"requests": 0, "forbidden": 0, "refused_busy": 0, "connections": 0, "skipped": 0}
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._files = {path: read_static(name) for path, (name, _) in STATIC.items()}
        q = f"?token={self.token}".encode() if self.token else b""
        for path in ("/", "/index.html"):  # the page asks for its own files with the token
            self._files[path] = self._files[path].replace(b"{{q}}", q)

    # ------------------------------------------------------------------ lifecycle

    def bind(self) -> "WebServer":
        """Bind the socket now: a busy port or an address not of this machine is one line
        (:class:`ConfigError`), before the stream starts."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        _Server.address_family = family
        handler = _make_handler(self)
        try:
            self._httpd = _Server((self.host, self.port), handler, bind_and_activate=False)
            self._httpd.server_bind()
            self._httpd.server_activate()
        except OSError as exc:
            if self._httpd is not None:
                self._httpd.server_close()
            self._httpd = None
            raise ConfigError(_bind_error(self.host, self.port, exc)) from None
        self.port = self._httpd.server_address[1]  # port 0: the one the system chose
        return self

    def start(self) -> "WebServer":
        """Bind (if not yet) and serve from a daemon thread."""
        if self._httpd is None:
            self.bind()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edge-ecg-web", daemon=True)
        self._thread.start()
        return self

    def stop(self, linger_s: float = 0.0) -> None:
        """Let the connections read what is left for up to ``linger_s`` s, then close everything."""
        self.hub.close()
        if linger_s > 0:
            deadline = threading.Event()
            for _ in range(int(linger_s / 0.05)):
                if self.clients == 0:
                    break
                deadline.wait(0.05)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        """The page's address, with the token when there is one (what the user opens)."""
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    # ------------------------------------------------------------------ per request (server threads)

    def allowed(self, query: str) -> bool:
        if self.token is None:
            return True
        given = (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())


def _bind_error(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"--web {host}:{port}: port {port} is busy (another program listens there): choose another, " \
               f"e.g. --web {port + 1}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"--web {host}:{port}: not allowed to listen on port {port} (ports below 1024 need root): " \
               f"use a port above 1024, e.g. --web 8080"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"--web {host}:{port}: {host} is not an address of this machine (use 0.0.0.0 for every " \
               f"network, or leave the host out for this machine only)"
    return f"--web {host}:{port}: cannot listen there ({exc.strerror or exc})"


def _make_handler(server: WebServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "edge-ecg"
        sys_version = ""

        def log_message(self, fmt, *args):  # noqa: D102 - quiet: the terminal shows the stream
            log.debug("web %s: " + fmt, self.address_string(), *args)

        def _headers(self, code: int, ctype: str, length: int | None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            for k, v in HEADERS.items():
                self.send_header(k, v)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def _plain(self, code: int, text: str, head: bool = False) -> None:
            body = (text + "\n").encode()
            self._headers(code, "text/plain; charset=utf-8", len(body))
            if not head:
                self.wfile.write(body)

        def _refuse_write(self):
            self.close_connection = True
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_write

        def do_HEAD(self):
            self._get(head=True)

        def do_GET(self):
            self._get(head=False)

        def _get(self, head: bool) -> None:
            with server._lock:
                server.counters["requests"] += 1
            parts = urlsplit(self.path)
            if not server.allowed(parts.query):
                with server._lock:
                    server.counters["forbidden"] += 1
                self._plain(403, "403: this page needs the token printed by edge-ecg stream (?token=...)", head)
                return
            if parts.path in server._files:
                body = server._files[parts.path]
                self._headers(200, STATIC[parts.path][1], len(body))
                if not head:
                    self.wfile.write(body)
            elif parts.path == "/state":
                body = json.dumps(server.hub.snapshot()[1], separators=(",", ":")).encode()
                self._headers(200, "application/json", len(body))
                if not head:
                    self.wfile.write(body)
            elif parts.path == "/events" and not head:
                self._events()
            else:
                self._plain(404, "404: not found", head)

        def _events(self) -> None:
            with server._lock:
                if server.clients >= server.max_clients:
                    server.counters["refused_busy"] += 1
                    busy = True
                else:
                    server.clients += 1
                    server.counters["connections"] += 1
                    busy = False
            if busy:
                self._plain(503, f"503: {server.max_clients} pages are open already")
                return
            self.close_connection = True
            try:
                self.connection.settimeout(server.send_timeout_s)
                self._headers(200, "text/event-stream; charset=utf-8", None)
                seq, state = server.hub.snapshot()
                self._send(f"event: hello\ndata: {json.dumps(state, separators=(',', ':'))}\n\n")
                while True:
                    messages, skipped = server.hub.read(seq, timeout=server.keepalive_s)
                    if skipped:
                        with server._lock:
                            server.counters["skipped"] += skipped
                    if messages:
                        self._send("".join(server.hub.encoded(m) for m in messages))
                        seq = messages[-1][0]
                    elif server.hub.closed:
                        break
                    else:
                        self._send(": keep-alive\n\n")
            except OSError:  # the browser went away, or stalled past send_timeout_s
                pass
            finally:
                with server._lock:
                    server.clients -= 1

        def _send(self, text: str) -> None:
            self.wfile.write(text.encode())
            self.wfile.flush()

    return Handler
