"""A webhook on loopback that records what it receives (the alert tests and the engine tests)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingWebhook:
    """``http://127.0.0.1:<port>/hook`` served from a thread; ``received`` holds ``(headers, body)``."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self.status = status
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with outer._lock:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Silent: the tests read what the server received, not its access log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def bodies(self, kind: str | None = None) -> list[Any]:
        with self._lock:
            return [b for _, b in self.received if kind is None or (isinstance(b, dict) and b.get("kind") == kind)]

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies():
                if predicate(body):
                    return body
            time.sleep(0.2)
        raise AssertionError(f"no matching POST within {timeout}s; received: {self.bodies()}")

    def __enter__(self) -> "RecordingWebhook":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
