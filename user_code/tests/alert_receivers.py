"""Real receivers for the alert channels, started by the tests on 127.0.0.1: an HTTP server
taking Slack-compatible webhook posts, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import http.server
import json
import socket
from email.policy import default

from aiosmtpd.controller import Controller
from tlc_server import LoopbackServer

# the path of a chat's incoming webhook is its secret: the tests check it never shows
WEBHOOK_PATH = "/hooks/T000-SECRET-TOKEN"


class WebhookReceiver:
    """Records the JSON body of every POST; answers `status` (200 unless a test says 500)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if receiver.status == 200:
                    receiver.received.append(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = LoopbackServer(Handler)
        self.url = self.server.base_url + WEBHOOK_PATH

    def texts(self) -> list[str]:
        return [body["text"] for body in self.received]

    def close(self) -> None:
        self.server.close()


class SmtpReceiver:
    """A real SMTP server on 127.0.0.1 (no TLS, no login) keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.content, policy=default)
                message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
                receiver.messages.append(message)
                return "250 Message accepted"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def bodies(self) -> list[str]:
        return [message.get_content() for message in self.messages]

    def close(self) -> None:
        self.controller.stop()
