"""Deliveries verified by npm's `standardwebhooks` (tests/node), not only by the Python library:
the signatures are the standard's, whichever language receives them."""

import json
import os
import subprocess
from pathlib import Path

from accounts.webhooks import services as webhooks
from accounts.webhooks.events import event_emit, user_data
from tests.support.node import NODE_MODULES, require_node_packages
from tests.webhooks.conftest import deliver

SCRIPT = Path(__file__).with_name("verify_standardwebhooks.js")


def node_verify(secret: str, deliveries) -> dict:
    completed = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps({"secret": secret, "deliveries": deliveries}),
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    return json.loads(completed.stdout)


def test_the_node_library_verifies_each_delivery_and_refuses_a_forged_one(hook, receiver, user):
    require_node_packages("standardwebhooks")
    event_emit("user.updated", data=user_data(user, name="Ann"))
    new_secret = webhooks.endpoint_secret_rotate(endpoint_id=hook.pk).secret
    event_emit("user.deactivated", data=user_data(user))
    deliver()
    deliveries = [{"body": got.body.decode(), "headers": got.headers} for got in receiver.received]

    # The old secret, and during the overlap the new one, each verify every delivery made since.
    assert node_verify(receiver.secrets[0], deliveries)["verified"] == [got.payload for got in receiver.received]
    assert node_verify(new_secret, deliveries[1:])["verified"] == [receiver.received[1].payload]
    forged = [{**deliveries[0], "body": deliveries[0]["body"].replace("Ann", "Eve")}]
    assert "error" in node_verify(receiver.secrets[0], forged)
