"""Direct tests of accounts.passwords.services: a recovery token cannot win twice, even when two resets
read the user before either writes (compare-and-set), and a reset ends every session."""

import pytest

from accounts.passwords import services as passwords
from accounts.users.links import Purpose, validation_token_make, validation_token_user
from accounts.users.models import User
from core.errors import InvalidToken
from tests.conftest import sign_in


NEW_PASSWORD = "new secret phrase 42"


# --- password_reset --------------------------------------------------------------------------


def test_password_reset_spends_the_token(user):
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    with pytest.raises(InvalidToken):
        passwords.password_reset(token=token, new_password="another phrase 77", confirm="another phrase 77")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_password_reset_is_compare_and_set_when_two_resets_read_the_user_first(user, monkeypatch):
    """Two concurrent resets with one token both pass the token check, then only one may write.

    Both requests resolve the token to the same user row before either writes; the stub hands
    each one that same stale state, as its own freshly loaded User would hold it.
    """
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    stale = validation_token_user(token=token, purpose=Purpose.RECOVERY)

    def read_before_any_write(*, token, purpose):
        return User(**{field.attname: getattr(stale, field.attname) for field in User._meta.concrete_fields})

    monkeypatch.setattr(passwords, "validation_token_user", read_before_any_write)

    passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    with pytest.raises(InvalidToken):
        passwords.password_reset(token=token, new_password="another phrase 77", confirm="another phrase 77")

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password("another phrase 77")


def test_password_reset_is_compare_and_set_even_for_the_same_user_object(user, monkeypatch):
    """The same User object handed to two resets (as a cache or a shared lookup would) wins once."""
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)
    shared = validation_token_user(token=token, purpose=Purpose.RECOVERY)
    monkeypatch.setattr(passwords, "validation_token_user", lambda *, token, purpose: shared)

    passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    with pytest.raises(InvalidToken):
        passwords.password_reset(token=token, new_password="another phrase 77", confirm="another phrase 77")

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_password_reset_ends_every_session(user):
    sessions = [sign_in(user), sign_in(user, remember=True)]
    token = validation_token_make(user=user, purpose=Purpose.RECOVERY)

    passwords.password_reset(token=token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)

    for session in sessions:
        session.refresh_from_db()
        assert (session.is_open(), session.end_reason) == (False, "recovery")
