"""The worker, `manage.py deliver_webhooks`, as processes of its own on a database of their own
(SQLite in a temporary directory, or PostgreSQL next to DATABASE_URL's): killed with SIGKILL in the
middle of a delivery and started again, nothing is lost; two workers never make one attempt at
once; SIGTERM stops one cleanly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import clean_env, postgresql_database_of_its_own
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.slow

WORKER_SETTINGS = {
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "WEBHOOK_TIMEOUT": "1",
    # Short, so that a killed worker's claim is taken over within the test.
    "WEBHOOK_LEASE": "2",
    "WEBHOOK_POLL_INTERVAL": "0.2",
    "WEBHOOK_RETRY_SCHEDULE": "0,0,0,0,0",
}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        with postgresql_database_of_its_own("authserver_webhooks") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('webhooks') / 'db.sqlite3'}"


class Project:
    """Runs manage.py (the project copy) on the module's database."""

    def __init__(self, cwd, database_url):
        self.cwd, self.env = cwd, clean_env(DATABASE_URL=database_url, **WORKER_SETTINGS)

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=self.cwd, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def python(self, code: str) -> str:
        """Run code in the project's shell; return its last line of output."""
        return self.manage("shell", "--verbosity", "0", "-c", code).strip().splitlines()[-1] if code else ""


    def worker(self, log) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", "deliver_webhooks"], cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )


@pytest.fixture(scope="module")
def site(project, database_url):
    site = Project(project, database_url)
    site.manage("migrate", "--noinput")
    return site


@pytest.fixture
def receiver(site):
    receiver = Receiver()
    receiver.start()
    site.manage("shell", "-c", "from accounts.webhooks.models import Endpoint, Event; Event.objects.all().delete(); Endpoint.objects.all().delete()")
    output = site.manage("webhook_endpoints", "--add", receiver.url)
    receiver.secrets = [output.split("secret=")[1].strip()]
    yield receiver
    receiver.stop()


def emit(site, count: int) -> list[str]:
    """Make `count` changes that each emit an event, each in its own transaction; return their ids."""
    return json.loads(site.python(f"""
import json
from django.db import transaction
from accounts.webhooks.events import event_emit
from accounts.webhooks.models import Event
before = set(Event.objects.values_list("message_id", flat=True))
for n in range({count}):
    with transaction.atomic():
        event_emit("user.updated", data={{"sub": f"sub-{{n}}", "email": f"u{{n}}@example.com", "name": "N"}})
print(json.dumps(sorted(set(Event.objects.values_list("message_id", flat=True)) - before)))
"""))


def states(site) -> dict[str, int]:
    return json.loads(site.python("""
import json
from collections import Counter
from accounts.webhooks.models import Delivery
print(json.dumps(Counter(Delivery.objects.values_list("state", flat=True))))
"""))


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_worker_killed_mid_delivery_loses_nothing(site, receiver, tmp_path):
    ids = emit(site, 5)
    receiver.stall_once = True
    with open(tmp_path / "worker1.log", "w") as log:
        first = site.worker(log)
    try:
        assert receiver.arrived.wait(60), (tmp_path / "worker1.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    receiver.release.set()
    stalled = receiver.received[0].id

    with open(tmp_path / "worker2.log", "w") as log:
        second = site.worker(log)
    try:
        wait_for(lambda: set(ids) <= {got.id for got in receiver.received} and states(site) == {"succeeded": 5})
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    assert receiver.ids().count(stalled) == 2  # the attempt cut short, and the one after the lease ran out
    assert receiver.all_verified()
    assert "Stopped." in (tmp_path / "worker2.log").read_text()


def test_two_workers_never_attempt_one_delivery_at_once(site, receiver, tmp_path):
    receiver.delay = 0.05
    ids = emit(site, 30)
    workers = []
    for n in (1, 2):
        with open(tmp_path / f"worker{n}.log", "w") as log:
            workers.append(site.worker(log))
    try:
        wait_for(lambda: states(site) == {"succeeded": 30}, 120)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(30) for worker in workers] == [0, 0]
    assert sorted(receiver.ids()) == sorted(ids)  # each once: no attempt ran twice
    assert receiver.overlaps == []
    assert receiver.all_verified()
