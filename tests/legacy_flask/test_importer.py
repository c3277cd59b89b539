"""import_flask_users: the Flask server's users, moved here, log in with their old passwords.

A database with the Flask server's schema is built in SQLite (a temp file, always) and in a
PostgreSQL database of its own, created next to DATABASE_URL's and dropped after (when
DATABASE_URL names PostgreSQL). Its hashes are made as Flask-Security made them
(tests/support/flask_server.py). Logins go over the real API with the project's real hashers.
"""

import hashlib
import os
from io import StringIO

import passlib.hash
import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from rest_framework.test import APIClient

import authserver.settings as project_settings
from accounts.passwords import credentials
from accounts.users.models import User
from tests.conftest import admin_login, postgresql_database_of_its_own, run
from tests.support.contract import AUTHENTICATE_PATH
from tests.support.flask_server import (
    CONFIRMED_AT,
    FLASK_SALT,
    FlaskServerDatabase,
    flask_hash,
    flask_signed,
    unusable_hashes,
)
from tests.support.servers import free_port
from tests.support.api import login

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRESQL = DATABASE_URL.startswith(("postgres://", "postgresql://"))
PASSWORD = "correct horse battery"
LONG_PASSWORD = "a long passphrase that is well over seventy-two bytes long, as some users like them"


@pytest.fixture(autouse=True)
def hashers(settings):
    """The project's real hashers (Argon2id first, at small costs) and the Flask server's salt."""
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    settings.ARGON2_MEMORY_COST = 1024
    settings.ARGON2_TIME_COST = 1
    settings.ARGON2_PARALLELISM = 1
    settings.FLASK_PASSWORD_SALT = FLASK_SALT
    settings.FLASK_PASSWORD_BCRYPT_ROUNDS = 4
    return settings


@pytest.fixture(scope="module")
def postgresql_database():
    """A PostgreSQL database of its own next to DATABASE_URL's, dropped after; its URL."""
    if not ON_POSTGRESQL:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (as .ci/run does in its second run)")
    with postgresql_database_of_its_own("flask_import") as url:
        yield url


def sqlite_flask(tmp_path) -> FlaskServerDatabase:
    path = tmp_path / "flask.db"
    return FlaskServerDatabase(url=f"sqlite:///{path}", sqlite_path=str(path))


@pytest.fixture(params=["sqlite", "postgresql"])
def flask_db(request, tmp_path):
    """An empty database with the Flask server's schema, in SQLite and in PostgreSQL."""
    if request.param == "sqlite":
        database = sqlite_flask(tmp_path)
    else:
        url = request.getfixturevalue("postgresql_database")
        database = FlaskServerDatabase(url=url, conninfo=url)
    database.create_schema()
    yield database
    database.close()


@pytest.fixture
def sqlite_db(tmp_path):
    """The same, in SQLite only, for what does not depend on the database."""
    database = sqlite_flask(tmp_path)
    database.create_schema()
    yield database
    database.close()


def run_import(url: str, *args: str) -> tuple[list[str], str]:
    """Run the command; return its output lines and what it wrote on stderr."""
    out, err = StringIO(), StringIO()
    call_command("import_flask_users", url, *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def algorithm(user: User) -> str:
    user.refresh_from_db()
    return user.password.split("$", 1)[0]


# --- Passwords -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["bcrypt", "sha512_crypt", "pbkdf2_sha512"])
def test_old_passwords_log_in_and_are_rehashed_with_argon2id(flask_db, api_client, scheme):
    flask_db.add_user("ann@example.com", PASSWORD, scheme=scheme)
    flask_db.add_user("long@example.com", LONG_PASSWORD, scheme=scheme)

    lines, _ = run_import(flask_db.url)

    assert lines[-1] == "imported 2, skipped 0, failed 0"
    for email, password in [("ann@example.com", PASSWORD), ("long@example.com", LONG_PASSWORD)]:
        user = User.objects.get(email=email)
        assert algorithm(user) == "flask_security"
        response = login(api_client, email, password)
        assert response.status_code == 200, response.json()
        assert response.json()["token"]
        assert algorithm(user) == "argon2"
        assert user.password.startswith("argon2$argon2id$")
        # The new hash serves the next login.
        assert login(api_client, email, password).status_code == 200
        profile = api_client.get("/api/user", HTTP_AUTHORIZATION=response.json()["token"])
        assert profile.json() == {"email": email, "profile": {"name": "Flask User"}}


@pytest.mark.django_db
def test_a_wrong_password_is_refused_and_the_hash_kept(sqlite_db, api_client):
    sqlite_db.add_user("ann@example.com", PASSWORD)
    run_import(sqlite_db.url)
    stored = User.objects.get().password

    # A wrong password is 401; an empty one is a field error (400) before any hash is checked.
    for wrong, status in [("correct horse batterY", 401), (PASSWORD[:-1], 401), ("", 400)]:
        response = login(api_client, "ann@example.com", wrong)
        assert response.status_code == status
    response = login(api_client, "ann@example.com", "not the password")
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid email or password"}
    assert User.objects.get().password == stored


@pytest.mark.django_db
def test_without_the_salt_no_imported_password_verifies(sqlite_db, api_client, hashers):
    sqlite_db.add_user("ann@example.com", PASSWORD)
    hashers.FLASK_PASSWORD_SALT = None

    lines, err = run_import(sqlite_db.url)

    assert lines[-1] == "imported 1, skipped 0, failed 0"
    assert "FLASK_PASSWORD_SALT is not set" in err
    assert login(api_client, "ann@example.com").status_code == 401
    hashers.FLASK_PASSWORD_SALT = FLASK_SALT
    assert login(api_client, "ann@example.com").status_code == 200


@pytest.mark.django_db
def test_a_hash_of_no_known_scheme_leaves_no_usable_password_and_is_listed(sqlite_db, api_client):
    sqlite_db.add_user("plain@example.com", password_hash="correct horse battery")  # plaintext
    sqlite_db.add_user("md5@example.com", password_hash=hashlib.md5(b"x").hexdigest())
    sqlite_db.add_user("cut@example.com", password_hash=flask_hash(PASSWORD)[:40])  # truncated bcrypt
    sqlite_db.add_user("none@example.com", password=None)
    # Well formed, but longer than the password column holds.
    huge = passlib.hash.pbkdf2_sha512.using(rounds=1000, salt_size=128).hash(flask_signed(PASSWORD))
    assert len(huge) > 255
    sqlite_db.add_user("huge@example.com", password_hash=huge)
    sqlite_db.add_user("ok@example.com", PASSWORD)

    lines, _ = run_import(sqlite_db.url)

    assert lines[-1] == "imported 6, skipped 0, failed 0"
    listed = [line for line in lines if line.startswith("no usable password for")]
    assert len(listed) == 5
    for email in ["plain@example.com", "md5@example.com", "cut@example.com", "none@example.com", "huge@example.com"]:
        assert any(f"({email})" in line and "a recovery email sets one" in line for line in listed)
        user = User.objects.get(email=email)
        assert not user.has_usable_password()
        assert login(api_client, email).status_code == 401
    assert User.objects.get(email="ok@example.com").has_usable_password()
    # A recovery email sets one.
    response = api_client.patch(AUTHENTICATE_PATH, {"email": "plain@example.com"}, format="json")
    assert response.status_code == 200
    assert mail.outbox[-1].to == ["plain@example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(unusable_hashes()))
def test_a_hash_that_cannot_be_checked_or_costs_too_much_is_refused_and_listed(sqlite_db, api_client, name):
    sqlite_db.add_user("bad@example.com", password_hash=unusable_hashes()[name])
    sqlite_db.add_user("ok@example.com", PASSWORD)

    lines, _ = run_import(sqlite_db.url)

    assert lines[-1] == "imported 2, skipped 0, failed 0"
    [listed] = [line for line in lines if line.startswith("no usable password for")]
    assert "(bad@example.com)" in listed and listed.endswith("(a recovery email sets one)")
    assert not User.objects.get(email="bad@example.com").has_usable_password()
    assert User.objects.get(email="ok@example.com").password.startswith("flask_security$")
    assert login(api_client, "bad@example.com").status_code == 401
    assert login(api_client, "ok@example.com", "wrong").status_code == 401
    assert login(api_client, "ok@example.com").status_code == 200


@pytest.mark.django_db
def test_the_reasons_of_a_refusal_are_listed(sqlite_db):
    hashes = unusable_hashes()
    sqlite_db.add_user("cost@example.com", password_hash=hashes["bcrypt cost 31"])
    sqlite_db.add_user("padding@example.com", password_hash=hashes["bcrypt salt padding"])
    sqlite_db.add_user("argon2@example.com", password_hash=hashes["argon2 m=1 GiB"])

    lines, _ = run_import(sqlite_db.url, "--dry-run")

    listed = "\n".join(line for line in lines if line.startswith("no usable password for"))
    assert "(cost@example.com): its hash costs too much to check: bcrypt cost 31 is above 16" in listed
    assert "(padding@example.com): its hash fails a check (ValueError: Invalid salt)" in listed
    assert "(argon2@example.com): its hash costs too much to check: argon2 m=1048576,t=1,p=1" in listed


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(unusable_hashes()))
def test_a_stored_hash_that_cannot_be_checked_spoils_no_other_login(sqlite_db, api_client, settings, name):
    """A hash imported before the import refused it: every failed login of another account still
    answers 401 and counts against the limits; its own account's logins answer 401."""
    settings.LOGIN_ACCOUNT_RATE = "3/hour"
    sqlite_db.add_user("ok@example.com", PASSWORD)
    sqlite_db.add_user("old@example.com", PASSWORD)
    run_import(sqlite_db.url)
    User.objects.filter(email="old@example.com").update(password=f"flask_security${unusable_hashes()[name]}")
    credentials.timing_hashes_forget()

    assert login(api_client, "old@example.com").status_code == 401
    assert login(api_client, "old@example.com", "wrong").status_code == 401
    assert login(api_client, "ghost@example.com", "wrong").status_code == 401
    for guess in range(3):
        assert login(APIClient(REMOTE_ADDR=f"198.51.100.{guess}"), "ok@example.com", f"guess {guess}").status_code == 401
    # Counted: at the limit the right password is refused too.
    assert login(api_client, "ok@example.com").status_code == 429


@pytest.mark.django_db
def test_the_equal_timing_hash_is_made_by_the_server_never_an_accounts(sqlite_db, api_client):
    sqlite_db.add_user("ann@example.com", PASSWORD)
    run_import(sqlite_db.url)
    stored = User.objects.get().password

    assert login(api_client, "ghost@example.com", "wrong").status_code == 401

    timing = credentials._timing_hashes()["flask_security"]
    assert timing != stored
    assert timing.startswith("flask_security$$2b$04$")  # FLASK_PASSWORD_BCRYPT_ROUNDS


@pytest.mark.django_db
def test_the_admin_shows_an_imported_hash_masked(sqlite_db, user_factory, client):
    flask_hash_value = flask_hash(PASSWORD)
    sqlite_db.add_user("ann@example.com", password_hash=flask_hash_value)
    run_import(sqlite_db.url)
    admin_login(client, user_factory(email="staff@example.com", is_staff=True, is_superuser=True))

    response = client.get(f"/admin/accounts/user/{User.objects.get(email='ann@example.com').pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "flask_security" in html and "bcrypt" in html
    assert flask_hash_value[7:] not in html


# --- Account states, names, roles ------------------------------------------------------------


@pytest.mark.django_db
def test_states_and_profile_move_over(flask_db, api_client):
    flask_db.add_user("  Ann@Example.com ", name="  Ann  ")
    flask_db.add_user("gone@example.com", active=False)
    flask_db.add_user("null@example.com", active=None)
    flask_db.add_user("new@example.com", confirmed_at=None)
    flask_db.add_user("noprofile@example.com", name=None)

    lines, _ = run_import(flask_db.url)

    assert lines[-1] == "imported 5, skipped 0, failed 0"
    ann = User.objects.get(email="Ann@Example.com")  # trimmed, case kept
    assert (ann.name, ann.confirmed_at.replace(tzinfo=None), ann.state) == ("Ann", CONFIRMED_AT, "active")
    assert ann.confirmed_at.utcoffset().total_seconds() == 0
    assert User.objects.get(email="noprofile@example.com").name == ""
    for email in ["gone@example.com", "null@example.com"]:
        assert User.objects.get(email=email).state == "deactivated"
    new = User.objects.get(email="new@example.com")
    assert (new.confirmed_at, new.state) == (None, "unconfirmed")
    assert not any(user.is_staff or user.is_superuser for user in User.objects.all())

    # Login: the deactivated account is reactivated, the unconfirmed one must confirm first.
    assert login(api_client, "GONE@example.com").status_code == 200
    assert User.objects.get(email="gone@example.com").state == "active"
    response = login(api_client, "new@example.com")
    assert response.status_code == 400
    assert response.json() == {"status": 400, "message": "Please confirm your account"}


@pytest.mark.django_db
def test_roles_become_groups_of_the_same_names(flask_db):
    existing = Group.objects.create(name="editor")
    flask_db.add_role("unused")
    flask_db.add_user("ann@example.com", roles=("admin", "editor"))
    flask_db.add_user("bob@example.com", roles=("editor",))
    flask_db.add_user("cid@example.com")

    lines, _ = run_import(flask_db.url)

    assert lines == ["group 'admin' created", "imported 3, skipped 0, failed 0"]
    assert sorted(Group.objects.values_list("name", flat=True)) == ["admin", "editor"]
    assert Group.objects.get(name="editor") == existing
    groups = {user.email: sorted(user.groups.values_list("name", flat=True)) for user in User.objects.all()}
    assert groups == {"ann@example.com": ["admin", "editor"], "bob@example.com": ["editor"], "cid@example.com": []}


# --- Skips, failures, idempotence, dry run ---------------------------------------------------


@pytest.mark.django_db
def test_an_email_already_here_in_another_case_is_skipped(flask_db, user_factory):
    here = user_factory(email="ann@example.com", name="Here")
    stored = here.password
    flask_db.add_user("ANN@Example.COM", name="From Flask")
    flask_db.add_user("twin@example.com")
    flask_db.add_user("TWIN@example.com")  # the Flask server compared emails with their case
    flask_db.add_user("bob@example.com")

    lines, _ = run_import(flask_db.url)

    assert lines[-1] == "imported 2, skipped 2, failed 0"
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 2
    assert "(ANN@Example.COM)" in skipped[0] and "already here" in skipped[0]
    assert "(TWIN@example.com)" in skipped[1]
    here.refresh_from_db()
    assert (here.name, here.password) == ("Here", stored)
    assert User.objects.filter(email__iexact="twin@example.com").get().email == "twin@example.com"


@pytest.mark.django_db
def test_rows_that_cannot_be_users_fail_alone(sqlite_db):
    sqlite_db.add_user("not an email")
    sqlite_db.add_user(None)
    sqlite_db.add_user("   ")
    sqlite_db.add_user("long@example.com", name="n" * 151)
    sqlite_db.add_user("when@example.com", confirmed_at="last Tuesday")
    sqlite_db.add_user("ok@example.com")

    lines, _ = run_import(sqlite_db.url)

    assert lines[-1] == "imported 1, skipped 0, failed 5"
    failed = [line for line in lines if line.startswith("failed")]
    assert len(failed) == 5
    assert failed[0].startswith("failed user 1 (not an email): email:")
    assert failed[1] == "failed user 2 (no email): no email"
    assert "name:" in failed[3]
    assert failed[4] == "failed user 5 (when@example.com): confirmed_at 'last Tuesday' is not a date and time"
    assert list(User.objects.values_list("email", flat=True)) == ["ok@example.com"]


@pytest.mark.django_db
def test_a_second_run_imports_nothing(flask_db):
    flask_db.add_user("ann@example.com", roles=("admin",))
    flask_db.add_user("bob@example.com")
    assert run_import(flask_db.url)[0][-1] == "imported 2, skipped 0, failed 0"
    before = list(User.objects.order_by("pk").values_list("pk", "email", "password", "date_joined"))

    lines, _ = run_import(flask_db.url)

    assert lines[-1] == "imported 0, skipped 2, failed 0"
    assert sum(line.startswith("skipped") for line in lines) == 2
    assert list(User.objects.order_by("pk").values_list("pk", "email", "password", "date_joined")) == before
    assert Group.objects.count() == 1


@pytest.mark.django_db
def test_dry_run_writes_nothing_and_reports_what_a_run_would_do(flask_db, user_factory):
    user_factory(email="here@example.com")
    flask_db.add_user("HERE@example.com")
    flask_db.add_user("ann@example.com", roles=("admin",))
    flask_db.add_user("bob@example.com", password_hash="unknown-scheme", roles=("admin",))
    flask_db.add_user("BOB@example.com")
    flask_db.add_user("bad email")

    dry, _ = run_import(flask_db.url, "--dry-run")

    assert User.objects.count() == 1
    assert Group.objects.count() == 0
    assert dry[0] == "Dry run: nothing is written; the lines below are what a real run would do."
    assert dry[-2:] == ["Dry run: nothing was written.", "imported 2, skipped 2, failed 1"]
    real, _ = run_import(flask_db.url)
    assert real[-1] == dry[-1]
    assert real[:-1] == dry[1:-2]
    assert User.objects.count() == 3


@pytest.mark.django_db
def test_the_flask_database_is_not_written(sqlite_db, tmp_path):
    sqlite_db.add_user("ann@example.com", roles=("admin",))
    sqlite_db.close()
    path = tmp_path / "flask.db"
    before = path.read_bytes()

    run_import(sqlite_db.url)

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flask.db"]


# --- Batches and progress --------------------------------------------------------------------


@pytest.mark.django_db
def test_large_imports_go_in_batches_with_a_progress_line(flask_db):
    for number in range(5):
        flask_db.add_user(f"user{number}@example.com", roles=("member",))

    lines, err = run_import(flask_db.url, "--batch-size", "2")

    assert lines[-1] == "imported 5, skipped 0, failed 0"
    assert err.splitlines() == [
        "2/5 users read: imported 2, skipped 0, failed 0",
        "4/5 users read: imported 4, skipped 0, failed 0",
        "5/5 users read: imported 5, skipped 0, failed 0",
    ]
    assert all(user.groups.get().name == "member" for user in User.objects.all())


@pytest.mark.django_db
def test_small_imports_print_no_progress(sqlite_db):
    sqlite_db.add_user("ann@example.com")
    assert run_import(sqlite_db.url)[1] == ""


@pytest.mark.django_db
def test_each_batch_is_one_transaction(sqlite_db, monkeypatch):
    """A database failure in the second batch undoes that batch; the first stays."""
    for number in range(4):
        sqlite_db.add_user(f"user{number}@example.com")
    save = User.save

    def failing_save(self, *args, **kwargs):
        if self.email == "user3@example.com":
            raise DatabaseError("disk full")
        save(self, *args, **kwargs)

    monkeypatch.setattr(User, "save", failing_save)
    with pytest.raises(DatabaseError):
        run_import(sqlite_db.url, "--batch-size", "2")

    assert sorted(User.objects.values_list("email", flat=True)) == ["user0@example.com", "user1@example.com"]
    monkeypatch.setattr(User, "save", save)
    assert run_import(sqlite_db.url, "--batch-size", "2")[0][-1] == "imported 2, skipped 2, failed 0"


# --- Errors: exit status 1 with a clear message ----------------------------------------------


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "Cannot read the database URL 'not a url'"),
        ("mysql://flask:secret@127.0.0.1/flask", "must be PostgreSQL or SQLite"),
        ("sqlite:////nonexistent/flask.db", "No SQLite file at /nonexistent/flask.db"),
        ("sqlite://", "The SQLite URL names no file"),
    ],
)
def test_a_bad_url_is_a_clear_error(url, message):
    with pytest.raises(CommandError, match=message) as error:
        run_import(url)
    assert "secret" not in str(error.value)


def test_an_unreachable_postgresql_is_a_clear_error():
    url = f"postgres://flask:secret@127.0.0.1:{free_port()}/flask"
    with pytest.raises(CommandError, match="Cannot connect to the Flask database") as error:
        run_import(url)
    assert "postgres://flask:***@127.0.0.1" in str(error.value)
    assert "secret" not in str(error.value)


@pytest.mark.django_db
def test_a_file_that_is_no_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database " * 100)
    with pytest.raises(CommandError, match='Cannot read table "user"'):
        run_import(f"sqlite:///{path}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement, message",
    [
        ("DROP TABLE roles_users", 'Cannot read table "roles_users" (user_id, role_id)'),
        ('ALTER TABLE "user" DROP COLUMN password_hash', 'Cannot read table "user"'),
        ("ALTER TABLE profile RENAME TO profiles", 'Cannot read table "profile"'),
    ],
)
def test_a_missing_table_or_column_is_a_clear_error(flask_db, statement, message):
    flask_db.add_user("ann@example.com")
    flask_db.execute(statement)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_import(flask_db.url)
    assert User.objects.count() == 0


def test_bad_batch_size_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--batch-size"):
        run_import("sqlite:///x.db", "--batch-size", "0")


def test_exit_status_1_in_a_fresh_process(project, tmp_path):
    database = sqlite_flask(tmp_path)
    database.script('CREATE TABLE "user" (id INTEGER PRIMARY KEY)')
    database.close()
    for url, message in [(database.url, 'Cannot read table "user"'), ("nonsense", "Cannot read the database URL")]:
        result = run(project, "manage.py", "import_flask_users", url)
        assert result.returncode == 1, result.stderr
        assert f"CommandError: {message}" in result.stderr
        assert "Traceback" not in result.stderr
