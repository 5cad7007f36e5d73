"""The end-to-end check's webhook receiver: a container of its own on the stack's network
(ci/e2e-alerts.yml), where the stack's TAXI_ALERT_WEBHOOK_URL points.

POST anything: its JSON body is kept, with the time it arrived. GET /received: every body so far,
as a JSON list of {"at": <unix time>, "path": ..., "body": ...}. Standard library only: it runs in
the user-code image. Never part of the product.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = 8080
MAX_BODY = 1 << 20  # a notification is a few KiB; refuse anything absurd
_received: list[dict] = []
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        if not 0 < length <= MAX_BODY:
            self.send_error(413)
            return
        body = json.loads(self.rfile.read(length))
        with _lock:
            _received.append({"at": time.time(), "path": self.path, "body": body})
        self._answer(200, b"ok", "text/plain")

    def do_GET(self):
        with _lock:
            payload = json.dumps(_received).encode()
        self._answer(200, payload, "application/json")

    def _answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
