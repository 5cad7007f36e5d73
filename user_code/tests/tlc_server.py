"""A scripted HTTP server on 127.0.0.1 standing in for the TLC's download site in tests."""

import http.server
import socket
import threading
import time
from collections import Counter


def unreachable_base_url() -> str:
    """http://127.0.0.1:<port> where nothing listens: a port the system just handed out, then
    closed again (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class LoopbackServer:
    """A threading HTTP server on 127.0.0.1 (a free port) serving `handler` until `close()`."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Reply:
    """One scripted answer. `drop_after`: send that many body bytes, then close the connection
    (the Content-Length still announces the full body). `delay`: stay silent that many seconds, then
    hang up without an answer (the client should have timed out by then)."""

    def __init__(
        self,
        status=200,
        body=b"",
        content_type="application/octet-stream",
        drop_after=None,
        headers=None,
        delay=0.0,
    ):
        self.status, self.body, self.content_type = status, body, content_type
        self.drop_after, self.headers, self.delay = drop_after, headers or {}, delay


class TLCServer(LoopbackServer):
    """Serves `routes[path]`: a list of Replies used in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] += 1
                replies = server.routes.get(self.path) or [Reply(404, b"no such key")]
                reply = replies[min(server.hits[self.path], len(replies)) - 1]
                if reply.delay:
                    time.sleep(reply.delay)
                    self.close_connection = True
                    return  # the client gave up long ago: answering would only hit a closed socket
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if reply.drop_after is not None:
                    self.wfile.write(reply.body[: reply.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(reply.body)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def serve(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)
        self.hits[path] = 0
