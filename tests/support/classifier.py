"""A local text-classification server in the Hugging Face Inference API's
format (what an Inference Endpoint or TEI answers): ``POST`` ``{"inputs":
text}`` -> ``[[{"label", "score"}, ...]]``. Text containing ``awful`` is
"toxic" (0.97), the rest "neutral"; ``/down`` answers 503. It records what
it was sent, headers included, so tests can check no token leaks to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Classifier:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _scores(text: str) -> list[dict[str, float | str]]:
    toxic = 0.97 if "awful" in text.casefold() else 0.02
    return [{"label": "toxic", "score": toxic}, {"label": "neutral", "score": 1 - toxic}]


@contextmanager
def classifier_server() -> Iterator[Classifier]:
    found = Classifier(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            found.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path == "/down":
                self.send_response(503)
                self.end_headers()
                return
            out = json.dumps([_scores(str(body.get("inputs", "")))]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
