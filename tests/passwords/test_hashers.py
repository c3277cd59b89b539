"""Password hashing: Argon2id with the ARGON2_* costs, upgraded at login, and calibrate_hasher.

Hashing is the point here, so these tests replace the suite's MD5 hasher with the project's
PASSWORD_HASHERS, with small costs where only their being used matters.
"""

import re
import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password, get_hasher, identify_hasher, make_password
from django.core.management import CommandError, call_command

import authserver.settings as project_settings
from accounts.passwords.hashers import Argon2PasswordHasher
from accounts.users.models import User
from tests.conftest import PASSWORD, clean_env
from tests.support.api import login

LOGIN_PATH = "/api/authenticate"


def costs(encoded: str) -> str:
    """Return the `m=...,t=...,p=...` part of an Argon2 hash."""
    algorithm, variety, version, params, salt, digest = encoded.split("$")
    assert (algorithm, variety, version) == ("argon2", "argon2id", "v=19")
    return params


@pytest.fixture
def argon2(settings):
    """Hash with the project's hashers, at small costs so that the tests stay fast."""
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    settings.ARGON2_MEMORY_COST = 1024
    settings.ARGON2_TIME_COST = 1
    settings.ARGON2_PARALLELISM = 1
    return settings


def project_hash(cwd, **variables: str) -> subprocess.CompletedProcess:
    """Hash a password in a fresh process with the project's settings and these variables."""
    env = {name: value for name, value in clean_env(**variables).items() if not name.startswith("ARGON2_")}
    env.update(variables)
    code = (
        "import django; django.setup(); from django.contrib.auth.hashers import make_password; "
        "print(make_password('correct horse battery'))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**env, "DJANGO_SETTINGS_MODULE": "authserver.settings", "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestSettings:
    def test_argon2id_is_the_default_hasher(self):
        assert project_settings.PASSWORD_HASHERS[0] == "accounts.passwords.hashers.Argon2PasswordHasher"
        # Django's own Argon2 hasher has the same algorithm name and would shadow this one.
        assert "django.contrib.auth.hashers.Argon2PasswordHasher" not in project_settings.PASSWORD_HASHERS

    def test_owasp_costs_by_default(self, project):
        result = project_hash(project)
        assert result.returncode == 0, result.stderr
        assert costs(result.stdout.strip()) == "m=19456,t=2,p=1"

    def test_costs_from_the_environment(self, project):
        result = project_hash(
            project, ARGON2_MEMORY_COST="12288", ARGON2_TIME_COST="3", ARGON2_PARALLELISM="2"
        )
        assert result.returncode == 0, result.stderr
        assert costs(result.stdout.strip()) == "m=12288,t=3,p=2"

    @pytest.mark.parametrize(
        "variables",
        [
            {"ARGON2_TIME_COST": "0"},
            {"ARGON2_PARALLELISM": "0"},
            {"ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "2"},
        ],
    )
    def test_impossible_costs_stop_the_start(self, project, variables):
        result = project_hash(project, **variables)
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
        assert "ARGON2_MEMORY_COST" in result.stderr


class TestHasher:
    def test_hashes_with_the_configured_costs(self, argon2):
        encoded = make_password(PASSWORD)
        assert costs(encoded) == "m=1024,t=1,p=1"
        assert check_password(PASSWORD, encoded)
        assert not check_password("wrong password", encoded)

    def test_reads_the_settings_when_it_hashes(self, argon2):
        """Not at import: a change of the settings applies to the next hash."""
        before = make_password(PASSWORD)
        argon2.ARGON2_MEMORY_COST = 2048
        argon2.ARGON2_TIME_COST = 2
        argon2.ARGON2_PARALLELISM = 2
        after = make_password(PASSWORD)
        assert costs(after) == "m=2048,t=2,p=2"
        hasher = get_hasher()
        assert isinstance(hasher, Argon2PasswordHasher)
        assert hasher.must_update(before)
        assert not hasher.must_update(after)

    def test_reads_hashes_of_djangos_argon2_hasher(self, argon2):
        from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher

        encoded = DjangoArgon2PasswordHasher().encode(PASSWORD, DjangoArgon2PasswordHasher().salt())
        assert isinstance(identify_hasher(encoded), Argon2PasswordHasher)
        assert check_password(PASSWORD, encoded)
        assert get_hasher().must_update(encoded)


class TestUpgradeAtLogin:
    """A hash with other costs is replaced by one with the configured costs at the next login."""

    def test_other_costs_are_upgraded(self, argon2, user_factory, api_client):
        argon2.ARGON2_MEMORY_COST, argon2.ARGON2_TIME_COST, argon2.ARGON2_PARALLELISM = 2048, 2, 2
        user = user_factory(email="old@example.com")
        assert costs(user.password) == "m=2048,t=2,p=2"
        argon2.ARGON2_MEMORY_COST, argon2.ARGON2_TIME_COST, argon2.ARGON2_PARALLELISM = 1024, 1, 1

        response = login(api_client, "old@example.com", body=None)

        assert response.status_code == 200
        assert "token" in response.json()
        user.refresh_from_db()
        assert costs(user.password) == "m=1024,t=1,p=1"
        assert user.check_password(PASSWORD)

    def test_djangos_default_costs_are_upgraded(self, argon2, user_factory, api_client):
        """Accounts hashed before this hasher (Django's 100 MiB, 8 lanes) move to the settings' costs."""
        from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher

        user = user_factory(email="django@example.com")
        legacy = DjangoArgon2PasswordHasher()
        User.objects.filter(pk=user.pk).update(password=legacy.encode(PASSWORD, legacy.salt()))

        response = login(api_client, "DJANGO@example.com", body=None)

        assert response.status_code == 200
        user.refresh_from_db()
        assert costs(user.password) == "m=1024,t=1,p=1"

    def test_wrong_password_changes_nothing(self, argon2, user_factory, api_client):
        argon2.ARGON2_MEMORY_COST = 2048
        user = user_factory(email="old@example.com")
        stored = user.password
        argon2.ARGON2_MEMORY_COST = 1024

        response = login(api_client, "old@example.com", "not the password", body=None)

        assert response.status_code == 401
        user.refresh_from_db()
        assert user.password == stored

    def test_current_costs_are_kept(self, argon2, user_factory, api_client):
        user = user_factory(email="current@example.com")
        stored = user.password

        assert login(api_client, "current@example.com", body=None).status_code == 200
        user.refresh_from_db()
        assert user.password == stored


class TestCalibrateHasher:
    """The command's output; the times it measures are this machine's and are not checked."""

    def calibrate(self, *args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command("calibrate_hasher", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def env_lines(self, output: str) -> dict[str, int]:
        lines = dict(re.findall(r"^(ARGON2_[A-Z_]+)=(\d+)$", output, re.MULTILINE))
        assert set(lines) == {"ARGON2_MEMORY_COST", "ARGON2_TIME_COST", "ARGON2_PARALLELISM"}
        return {name: int(value) for name, value in lines.items()}

    def test_prints_the_costs_and_the_env_lines(self):
        output, _ = self.calibrate("--target-ms", "5", "--samples", "1")
        values = self.env_lines(output)
        assert re.search(
            r"^  \d+ MiB \(\d+ KiB\), \d+ iterations, \d+ lane\(s\): [\d.]+ ms per hash$",
            output,
            re.MULTILINE,
        )
        assert f"({values['ARGON2_MEMORY_COST']} KiB), {values['ARGON2_TIME_COST']} iterations" in output
        assert values["ARGON2_MEMORY_COST"] >= 1024 and values["ARGON2_MEMORY_COST"] % 1024 == 0
        assert values["ARGON2_TIME_COST"] == 2
        assert values["ARGON2_PARALLELISM"] == 1
        assert "OWASP's 19 MiB, 2 iterations, 1 lane" in output

    def test_iterations_and_lanes_are_kept(self):
        output, _ = self.calibrate(
            "--target-ms", "5", "--time-cost", "3", "--parallelism", "2", "--samples", "1"
        )
        values = self.env_lines(output)
        assert (values["ARGON2_TIME_COST"], values["ARGON2_PARALLELISM"]) == (3, 2)

    def test_memory_cap_is_kept(self):
        output, _ = self.calibrate("--target-ms", "1000", "--max-memory-mib", "2", "--samples", "1")
        values = self.env_lines(output)
        assert values["ARGON2_MEMORY_COST"] <= 2048
        # The time left under the cap goes to iterations.
        assert values["ARGON2_TIME_COST"] >= 2

    def test_printed_costs_are_usable(self, argon2):
        output, _ = self.calibrate("--target-ms", "5", "--samples", "1")
        values = self.env_lines(output)
        for name, value in values.items():
            setattr(argon2, name, value)
        encoded = make_password(PASSWORD)
        assert costs(encoded) == "m={ARGON2_MEMORY_COST},t={ARGON2_TIME_COST},p={ARGON2_PARALLELISM}".format(
            **values
        )

    def test_weak_costs_are_flagged(self):
        _, err = self.calibrate("--target-ms", "5", "--max-memory-mib", "4", "--samples", "1")
        assert "below OWASP's minimum" in err

    @pytest.mark.parametrize("args", [["--target-ms", "0"], ["--target-ms", "10", "--time-cost", "0"]])
    def test_bad_arguments(self, args):
        with pytest.raises(CommandError):
            self.calibrate(*args)

    def test_target_is_required(self):
        with pytest.raises(CommandError):
            self.calibrate()


def test_calibrate_hasher_in_a_fresh_process(project):
    """As an operator runs it: exit status 0 and the env lines on stdout."""
    env = {name: value for name, value in clean_env().items() if not name.startswith("ARGON2_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "calibrate_hasher", "--target-ms", "5", "--samples", "1"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    last_lines = result.stdout.splitlines()[-3:]
    assert [line.split("=")[0] for line in last_lines] == [
        "ARGON2_MEMORY_COST",
        "ARGON2_TIME_COST",
        "ARGON2_PARALLELISM",
    ]
    assert all(line.split("=")[1].isdigit() for line in last_lines)


def test_argon2_hashes_run_one_at_a_time_per_process(monkeypatch):
    """gunicorn's threaded workers run logins at once; their hashes (ARGON2_MEMORY_COST each) do not."""
    import threading
    import time

    from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher

    running, most = [0], [0]
    count = threading.Lock()

    def hashing(*args):
        with count:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with count:
            running[0] -= 1
        return True

    monkeypatch.setattr(DjangoArgon2PasswordHasher, "verify", hashing)
    monkeypatch.setattr(DjangoArgon2PasswordHasher, "encode", hashing)
    hasher = Argon2PasswordHasher()
    threads = [threading.Thread(target=hasher.verify, args=("password", "argon2$...")) for _ in range(4)]
    threads += [threading.Thread(target=hasher.encode, args=("password", "salt")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 1
