"""A stand-in for the TLC file store on 127.0.0.1 whose files the test changes while it runs.

Unlike `tlc_server.TLCServer` (scripted replies, for the download's failure modes), this one
behaves like a file store: `publish(path, body)` makes a file appear or changes it (new ETag and
Last-Modified); a path never published answers 404, and the switches reproduce the sites the
observer must cope with: HEAD refused (405), no validators, no range support, server errors.
"""

from __future__ import annotations

import hashlib
import http.server
import re
from collections import Counter
from email.utils import formatdate

from tlc_server import LoopbackServer


class TLCSite(LoopbackServer):
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, float]] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.head_allowed = True
        self.validators = True
        self.ranges = True
        # Answer this many requests with HTTP 503 (then serve normally again).
        self.failures_left = 0
        self._clock = 1_700_000_000.0
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):
                site.requests[("HEAD", self.path)] += 1
                if not site.head_allowed:
                    self._reply(405, b"", {})
                    return
                self._serve(head=True)

            def do_GET(self):
                site.requests[("GET", self.path)] += 1
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                if site.failures_left > 0:
                    site.failures_left -= 1
                    self._reply(503, b"Service Unavailable", {}, head)
                    return
                if self.path not in site.files:
                    self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>", {}, head)
                    return
                body, mtime = site.files[self.path]
                headers = {}
                if site.validators:
                    headers["ETag"] = f'"{hashlib.md5(body).hexdigest()}"'
                    headers["Last-Modified"] = formatdate(mtime, usegmt=True)
                wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
                if wanted and site.ranges and not head:
                    first, last = wanted.groups()
                    if first == "":  # a suffix: the last N bytes
                        first, last = max(0, len(body) - int(last)), len(body) - 1
                    else:
                        first, last = int(first), min(int(last or len(body) - 1), len(body) - 1)
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
                    self._reply(206, body[first : last + 1], headers, head)
                    return
                self._reply(200, body, headers, head)

            def _reply(self, status, body, headers, head=True):
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def publish(self, path: str, body: bytes) -> None:
        """Publish or re-publish: a later Last-Modified, and the ETag of the new body."""
        self._clock += 3600
        self.files[path] = (body, self._clock)
