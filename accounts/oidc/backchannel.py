"""Back-Channel Logout 1.0: when a session ends, for any reason, each client that registered a
back-channel logout URI and was given an ID token in that session gets a logout token.

accounts.sessions calls `sessions_ended` inside the transaction that ended the sessions; the
tokens are made then (one query finds the clients), and posted once the transaction commits, by a
small pool of threads, so that no request waits on a client's server. A delivery is one POST
(`logout_token=...`, form-encoded), 5 seconds at most, no redirect followed, tried twice; each
outcome is in the audit trail and /metrics.
"""

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction

from accounts.audit import services as audit
from accounts.oidc import tokens
from accounts.oidc.models import IDToken
from core import metrics

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5
ATTEMPTS = 2
RETRY_AFTER_SECONDS = 1.0

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backchannel-logout")
_pending = 0
_pending_lock = threading.Condition()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def sessions_ended(session_pks: list[int]) -> None:
    """Make the logout tokens of these sessions' clients; post them after the commit."""
    rows = (
        IDToken.objects.filter(session_id__in=session_pks)
        .exclude(application__backchannel_logout_uri="")
        .values_list(
            "application__name", "application__client_id", "application__backchannel_logout_uri",
            "application__algorithm", "session__public_id", "user__public_id", "user__email",
        )
        .distinct()
    )
    deliveries = []
    for name, client_id, uri, algorithm, session_id, subject, email in rows:
        token = tokens.logout_token_make(client_id=client_id, subject=str(subject), session_id=session_id, algorithm=algorithm or "RS256")
        deliveries.append((name, uri, token, email))
    if deliveries:
        transaction.on_commit(lambda: [_submit(*delivery) for delivery in deliveries])


def _submit(name: str, uri: str, token: str, email: str) -> None:
    global _pending
    with _pending_lock:
        _pending += 1
    _pool.submit(_deliver, name, uri, token, email)


def _post(uri: str, token: str) -> int:
    body = urllib.parse.urlencode({"logout_token": token}).encode()
    request = urllib.request.Request(
        uri, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"}
    )
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _deliver(name: str, uri: str, token: str, email: str) -> None:
    global _pending
    try:
        outcome = ""
        for attempt in range(ATTEMPTS):
            try:
                status = _post(uri, token)
                outcome = f"HTTP {status}"
                if status in (200, 204):
                    audit.record(audit.Type.BACKCHANNEL_LOGOUT, email=email, detail=f"{name}: {outcome}")
                    metrics.oidc_counted("backchannel_sent")
                    return
            except (OSError, ValueError) as exc:
                outcome = type(exc).__name__
            if attempt + 1 < ATTEMPTS:
                time.sleep(RETRY_AFTER_SECONDS)
        logger.warning("Back-channel logout to %s (%s) not delivered: %s", name, uri, outcome)
        audit.record(audit.Type.BACKCHANNEL_LOGOUT_FAILED, email=email, detail=f"{name}: {outcome}")
        metrics.oidc_counted("backchannel_failed")
    except Exception:  # a delivery thread must never die silently
        logger.exception("Back-channel logout to %s failed", name)
    finally:
        with _pending_lock:
            _pending -= 1
            _pending_lock.notify_all()


def wait_idle(timeout: float = 30.0) -> bool:
    """Wait until every delivery handed over so far is done (tests, and a worker's shutdown)."""
    deadline = time.monotonic() + timeout
    with _pending_lock:
        while _pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _pending_lock.wait(left)
    return True
