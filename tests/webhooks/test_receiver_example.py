"""examples/webhook_receiver/receiver.py, run as its README says: it verifies a delivery, prints
the event once, drops the same webhook-id sent again, and refuses a forged one."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accounts.webhooks import services as webhooks
from accounts.webhooks.events import event_emit, user_data
from accounts.webhooks.models import Delivery
from tests.support.servers import free_port
from tests.webhooks.conftest import deliver

pytestmark = pytest.mark.slow

RECEIVER = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver" / "receiver.py"


def test_the_example_receiver_prints_each_event_once(db, tmp_path, user):
    port = free_port()
    new = webhooks.endpoint_add(url=f"http://127.0.0.1:{port}/")
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", str(port), "--db", str(tmp_path / "seen.sqlite3")],
        env={"WEBHOOK_SECRET": new.secret, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        process.stderr.readline()  # "Listening on ..."
        event_emit("user.created", data=user_data(user, name="Ann"))
        deliver()
        webhooks.deliveries_resend(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)))
        deliver()
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/", data=b"{}", method="POST",
            headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 400
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)

    assert [json.loads(line)["data"] for line in stdout.splitlines()] == [user_data(user, name="Ann")]
    assert "dropped" in stderr
    assert set(Delivery.objects.values_list("state", "last_status_code")) == {("succeeded", 204)}
