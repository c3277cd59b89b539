"""Idle and slow clients do not stop the server from answering, as it is started in production.

The Procfile's `web` command (the Dockerfile's CMD and docker-compose.yml's app command are the
same one: tests/deploy/test_configuration.py checks it), with WEB_CONCURRENCY=2, after the
Procfile's `release`. Then 100 TCP connections that send nothing, and 10 clients that POST
/api/authenticate announcing a 60-byte body and send it a byte a second. While all of them are
open, GET /status answers 200 each time, on a client socket that waits 1 second at most.

Under gunicorn's sync workers each of those connections holds a whole worker: /status waits
behind them (tens of seconds), and a worker whose connection stays silent for `timeout` is killed.
"""

import http.client
import os
import secrets
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT
from tests.deploy.test_configuration import procfile_commands
from tests.support.servers import free_port, gunicorn, production_environment

pytestmark = pytest.mark.slow

IDLE_CONNECTIONS = 100
SLOW_CLIENTS = 10
STATUS_CHECKS = 8
BODY = b"email=slow%40example.com&password=a-password-sent-slowly-xxx"
assert len(BODY) == 60


def trickle(port: int, opened: list[socket.socket], stop: threading.Event) -> None:
    """POST /api/authenticate with BODY's length announced, then its bytes a second apart."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    opened.append(sock)
    sock.sendall(
        b"POST /api/authenticate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BODY)
    )
    for byte in BODY:
        if stop.wait(1):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # the server gave up on it: fine, it is not what is tested
            return


def status(port: int) -> int | str:
    """GET /status on a new connection, waiting 1 second at most: its status, or what went wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/status")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError as error:  # socket.timeout included
        return f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def test_status_answers_while_idle_and_slow_clients_are_connected(tmp_path):
    port = free_port()
    env = production_environment(
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        EMAIL_BACKEND="console",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        # `python` and `gunicorn` in the Procfile are this virtualenv's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    commands = procfile_commands()
    subprocess.run(shlex.split(commands["release"]), cwd=PROJECT, env=env, capture_output=True, timeout=180, check=True)

    log = tmp_path / "gunicorn.log"
    opened: list[socket.socket] = []
    stop = threading.Event()
    clients = [threading.Thread(target=trickle, args=(port, opened, stop), daemon=True) for _ in range(SLOW_CLIENTS)]
    with gunicorn(command=shlex.split(commands["web"]), port=port, cwd=PROJECT, env=env, log=log):
        try:
            for _ in range(IDLE_CONNECTIONS):
                opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            for client in clients:
                client.start()
            answers = []
            for _ in range(STATUS_CHECKS):
                time.sleep(1)  # spread over the idle connections' first seconds and the bodies' bytes
                answers.append(status(port))
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=10)
            for sock in opened:
                sock.close()
        assert answers == [200] * STATUS_CHECKS, f"{answers}\n{log.read_text()[-3000:]}"
    assert "WORKER TIMEOUT" not in log.read_text()
