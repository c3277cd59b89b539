"""A webhook receiver for the tests: a ThreadingHTTPServer on 127.0.0.1 (a free port) that checks
every delivery with the `standardwebhooks` library, against each secret it is given, and answers
as told (200, 500, a redirect, or stalling until released)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    # Per secret the receiver held: whether the signature verified with it.
    verified: list[bool] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, port: int = 0):
        self.secrets: list[str] = []
        self.answer = 200
        self.received: list[Received] = []
        self.release = threading.Event()
        self.arrived = threading.Event()
        # The next request stalls until `release` (then is answered 200); later ones do not.
        self.stall_once = False
        # Seconds each answer waits (to hold requests in flight together).
        self.delay = 0.0
        # Ids that arrived while an attempt with the same id was still in flight.
        self.overlaps: list[str] = []
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hooks?x=1"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                got = Received(headers=headers, body=body, verified=[receiver._verifies(secret, body, headers) for secret in receiver.secrets])
                with receiver._lock:
                    receiver.received.append(got)
                    if got.headers.get("webhook-id") in receiver._in_flight:
                        receiver.overlaps.append(got.id)
                    receiver._in_flight.add(got.headers.get("webhook-id"))
                    stall, receiver.stall_once = receiver.stall_once, False
                receiver.arrived.set()
                try:
                    if receiver.answer == "stall" or stall:
                        receiver.release.wait(30)
                    elif receiver.delay:
                        threading.Event().wait(receiver.delay)
                    self._answer()
                except OSError:
                    pass  # the sender gave up (a timeout) or died
                finally:
                    with receiver._lock:
                        receiver._in_flight.discard(got.headers.get("webhook-id"))

            def _answer(self):
                if receiver.answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                    self.end_headers()
                    return
                status = 200 if receiver.answer == "stall" else receiver.answer
                reply = b"x" * 5000 if status == 200 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @staticmethod
    def _verifies(secret: str, body: bytes, headers: dict) -> bool:
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def ids(self) -> list[str]:
        return [got.id for got in self.received]

    def all_verified(self) -> bool:
        """Whether every delivery verified with every secret the receiver holds."""
        return bool(self.received) and all(got.verified and all(got.verified) for got in self.received)
