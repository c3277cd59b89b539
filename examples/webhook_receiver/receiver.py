"""A minimal webhook receiver for the auth server: the standard library's http.server and the
`standardwebhooks` library, nothing else.

It verifies each delivery's signature (and that its timestamp is within 5 minutes), answers 204,
and drops a delivery whose `webhook-id` it has already handled: the server delivers at least once,
so the same event may come twice (a retry after an answer that was lost). Handled ids are kept in
a SQLite file, so a restart does not forget them.

    WEBHOOK_SECRET=whsec_... python receiver.py [--port 8002] [--db seen.sqlite3]
"""

import argparse
import json
import os
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

# During a rotation, set both: the new secret and the old one, comma-separated.
SECRETS = [secret.strip() for secret in os.environ.get("WEBHOOK_SECRET", "").split(",") if secret.strip()]
MAX_BODY = 1_000_000


class Seen:
    """The ids handled already (a SQLite table; one lock, since the server is threaded)."""

    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, type TEXT, received_at TEXT DEFAULT CURRENT_TIMESTAMP)")
        self._lock = threading.Lock()

    def first_time(self, message_id: str, type: str) -> bool:
        """Record the id; return False if it was recorded before."""
        with self._lock, self._db:
            inserted = self._db.execute("INSERT OR IGNORE INTO seen (id, type) VALUES (?, ?)", (message_id, type))
            return inserted.rowcount == 1


def handle(event: dict) -> None:
    """Your code: here the event is printed. `data.sub` is the user's id in the auth server's tokens."""
    print(json.dumps(event), flush=True)


class Handler(BaseHTTPRequestHandler):
    seen: Seen

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        event = None
        for secret in SECRETS:
            try:
                event = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError:
                continue
        if event is None:
            return self._answer(400)
        if self.seen.first_time(headers["webhook-id"], event["type"]):
            handle(event)
        else:
            print(f"duplicate {headers['webhook-id']} dropped", file=sys.stderr, flush=True)
        self._answer(204)

    def _answer(self, status: int):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--db", default="seen.sqlite3", help="where the handled ids are kept")
    options = parser.parse_args()
    if not SECRETS:
        sys.exit("Set WEBHOOK_SECRET to the endpoint's secret (whsec_...), as webhook_endpoints --add printed it.")
    Handler.seen = Seen(options.db)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    print(f"Listening on http://127.0.0.1:{options.port}/", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
