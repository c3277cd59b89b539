"""One way to start gunicorn, for every test that serves the project over HTTP and for bench/.

`gunicorn(...)` is a context manager: it starts `python -m gunicorn <args> --bind 127.0.0.1:<port>`
on a free loopback port, waits until the server is ready (GET /status answers 200, unless told
otherwise), yields a `Server` (its process, port and base URL) and stops it (SIGTERM, as docker
stop does; SIGKILL after 30 s). `start_gunicorn(...)` is the same without the `with`, for the few
that stop a server in the middle of a test (`Server.stop()`).

`production_environment(...)` is the one way to build a server's environment.

No pytest here: bench/ imports this module too. A server that does not start raises
ServerDidNotStart (an AssertionError, so a test fails on it) with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PROJECT = Path(__file__).resolve().parents[2]


def server_variables() -> set[str]:
    """Every variable the server reads: the `NAME=` and `# NAME=` lines of .env.example (as .ci/run
    reads them), and what steers Django or Python itself."""
    documented = re.findall(r"^#? *([A-Z][A-Z0-9_]*)=", (PROJECT / ".env.example").read_text(), re.MULTILINE)
    return {*documented, "DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONSTARTUP"}


def production_environment(workdir: Path | None = None, *, keep: Iterable[str] = (), **variables: str) -> dict[str, str]:
    """Return the environment of a server started as production runs it.

    This process's environment without any variable the server reads (server_variables()), so that
    a developer's shell changes no test's server, except those named in `keep` (e.g. CACHE_URL, for
    a test that uses Redis when CI sets it); DEBUG off; ALLOWED_HOSTS=127.0.0.1; a SQLite database
    in `workdir` when one is given; then `variables`.
    """
    stripped = server_variables() - set(keep)
    env = {key: value for key, value in os.environ.items() if key not in stripped}
    env.update(DEBUG="false", ALLOWED_HOSTS="127.0.0.1")
    if workdir is not None:
        env.update(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}")
    env.update(variables)
    return env


class ServerDidNotStart(AssertionError):
    pass


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, status: int = 200) -> bool:
    """Whether GET `url` answers `status` now (False while nothing listens)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == status
    except urllib.error.HTTPError as error:
        return error.code == status
    except OSError:
        return False


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], log: Path | None, timeout: float = 60, name: str = "the server") -> None:
    """Wait until `ready()` is true, or kill the process and raise ServerDidNotStart with the end of
    its log if it exits first or `timeout` passes (a safety net, not a measure)."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if process.poll() is not None or time.monotonic() > deadline:
            exited = process.poll() is not None
            process.kill()
            tail = log.read_text()[-3000:] if log is not None and log.is_file() else ""
            raise ServerDidNotStart(f"{name} did not start{' (it exited)' if exited else ''}:\n{tail}")
        time.sleep(0.2)


def stop(process: subprocess.Popen, timeout: float = 30) -> int | None:
    """Stop gracefully (SIGTERM), killing after `timeout`; return the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path | None
    _files: list[IO] = field(default_factory=list, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s); return its exit status."""
        try:
            return stop(self.process)
        finally:
            for file in self._files:
                file.close()
            self._files.clear()


def _output(target, files: list[IO]):
    if isinstance(target, (str, Path)):
        file = open(target, "w")  # noqa: SIM115 (closed by Server.stop())
        files.append(file)
        return file
    return target


def start_gunicorn(
    *args: str,
    env: dict[str, str],
    cwd: Path = PROJECT,
    log: Path | None = None,
    stdout: Path | int | None = None,
    port: int | None = None,
    command: list[str] | None = None,
    ready: Callable[[Server], bool] | None = None,
    timeout: float = 60,
    name: str = "gunicorn",
) -> Server:
    """Start gunicorn and wait until it is ready; return the Server (stop it with .stop()).

    args     gunicorn's arguments (the application, -c, --workers, ...); `--bind 127.0.0.1:<port>`
             is added. Or `command`: the whole command line, as is (a Procfile's), then no --bind
             is added and `port` says where it listens (PORT in `env`).
    log      the file of gunicorn's standard error; its standard output goes there too unless
             `stdout` names another file or is subprocess.DEVNULL.
    ready    when the server is ready; GET /status answering 200 unless given; `ready=False`-like
             callers pass `lambda server: True` to wait for nothing.
    """
    port = port or free_port()
    files: list[IO] = []
    if log is None:
        out, err = _output(stdout, files) if stdout is not None else subprocess.DEVNULL, subprocess.DEVNULL
    elif stdout is None:  # both into the log
        out, err = _output(log, files), subprocess.STDOUT
    else:
        out, err = _output(stdout, files), _output(log, files)
    line = command if command is not None else [sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(line, cwd=cwd, env=env, stdout=out, stderr=err)
    server = Server(process=process, port=port, log=log, _files=files)
    check = ready or (lambda server: answers(f"{server.base}/status"))
    try:
        wait_until_ready(process, lambda: check(server), log, timeout=timeout, name=name)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def gunicorn(*args: str, **options) -> Iterator[Server]:
    """start_gunicorn(*args, **options) for the length of a `with`; stopped at its end."""
    server = start_gunicorn(*args, **options)
    try:
        yield server
    finally:
        server.stop()
