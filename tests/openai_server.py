"""A real HTTP server speaking the OpenAI ``/v1/embeddings`` protocol, for client tests.

It listens on a random 127.0.0.1 port and answers with real MiniLM vectors (scaled, i.e.
un-normalised, as MAX returns them), so the client is exercised over real sockets: batching,
timeouts, retries, error bodies. ``script`` queues behaviours for the next requests
(``("status", 429, headers)``, ``("delay", seconds)``, ``("body", raw_bytes)``,
``("dim", n)`` for wrong-dimension vectors, ``("count", n)`` for a wrong number of vectors);
an empty script means a normal answer. The real MAX server is exercised in test_max_serve.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


class EmbeddingsTestServer:
    MODEL = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, embed) -> None:  # embed: list[str] -> (n, d) array
        self.embed = embed
        self.script: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    action = server.script.pop(0) if server.script else ("ok",)
                if self.path != "/v1/embeddings":
                    return self._send(404, {"detail": "Not Found"})
                kind = action[0]
                if kind == "status":
                    return self._send(
                        action[1],
                        {"error": {"message": f"scripted {action[1]}"}},
                        action[2] if len(action) > 2 else {},
                    )
                if kind == "delay":
                    time.sleep(action[1])
                if kind == "body":
                    return self._raw(200, action[1])
                if body.get("model") != server.MODEL:
                    return self._send(
                        400,
                        {
                            "error": {
                                "message": f"model {body.get('model')!r} not found",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                texts = body["input"]
                vectors = np.asarray(server.embed(texts), dtype=np.float64) * 7.5  # un-normalised
                if kind == "dim":
                    vectors = np.ones((len(texts), action[1]))
                if kind == "count":
                    vectors = vectors[: action[1]]
                data = [
                    {"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in enumerate(vectors)
                ]
                data.reverse()  # the client must order by "index"
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": server.MODEL,
                        "usage": {"prompt_tokens": 0, "total_tokens": 0},
                    },
                )

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _raw(self, status: int, raw: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> EmbeddingsTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
