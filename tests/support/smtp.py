"""One SMTP sink: a real SMTP server (aiosmtpd) on a free loopback port, for tests that send email
over SMTP instead of Django's in-memory outbox.

    with smtp_sink() as collector:   # collector.port; collector.messages: [(recipients, message)]
        collector.refuse.add("nobody@example.com")   # answer 550 for this recipient
"""

import contextlib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


class Collector:
    """An aiosmtpd handler that keeps every message it accepts, and can refuse recipients."""

    def __init__(self):
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_sink() -> Iterator[Collector]:
    """Run an SMTP server on a free local port for the length of a `with`; yield its collector (with .port)."""
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port(), ready_timeout=30)
    controller.start()
    collector.port = controller.port
    try:
        yield collector
    finally:
        controller.stop()


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()
