"""Direct tests of accounts.services (and the model constraint behind them).

These cover what the API tests cannot easily show: that a failed registration email leaves no
row, that a registration losing a race to the unique index is UserAlreadyExist, that a recovery
token cannot win twice even when two resets read the user before either writes (compare-and-set),
that an email change survives a lost notice, that confirming twice is idempotent, who may act on
whom in the staff services, and that the database itself refuses two emails differing only in case.
"""

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from accounts.account import profile as account
from accounts.passwords import services as passwords
from accounts.account import registration
from accounts.privileges import rules
from accounts.staff import services as staff
from accounts.notices.errors import CouldNotSendEmail
from core.errors import InvalidToken
from accounts.privileges.errors import StaffActionForbidden
from accounts.account.errors import UserAlreadyExist
from accounts.notices.models import QueuedEmail
from accounts.users.models import User
from accounts.users.links import Purpose, validation_token_make, validation_token_user
from tests.conftest import PASSWORD, sign_in

NEW_PASSWORD = "new secret phrase 42"
CLIENT = "192.0.2.10"


@pytest.fixture
def bob_registered_after_the_check(user_factory, monkeypatch):
    """Take bob@example.com, unseen by the services' existence check: another request won the race."""
    user_factory(email="bob@example.com")
    manager = User.objects
    monkeypatch.setattr(manager, "with_email", lambda email: manager.none())
    assert not User.objects.with_email("bob@example.com").exists()  # the existence check is blind


# --- user_register ---------------------------------------------------------------------------


def test_user_register_leaves_no_user_when_the_email_backend_fails(db, failing_mail):
    with pytest.raises(CouldNotSendEmail):
        registration.user_register(email="bob@example.com", name="Bob", password=PASSWORD, confirm=PASSWORD, client_address=CLIENT)

    assert not User.objects.exists()
    assert mail.outbox == []


def test_user_register_inside_an_outer_transaction_rolls_back_only_its_own_row(db, failing_mail, user_factory):
    """The savepoint undoes the new account, not the caller's earlier writes."""
    with transaction.atomic():
        user_factory(email="earlier@example.com")
        with pytest.raises(CouldNotSendEmail):
            registration.user_register(email="bob@example.com", name="Bob", password=PASSWORD, confirm=PASSWORD, client_address=CLIENT)

    assert list(User.objects.values_list("email", flat=True)) == ["earlier@example.com"]


def test_user_register_creates_an_unconfirmed_user_and_sends_one_email(db):
    user = registration.user_register(email="bob@example.com", name="Bob", password=PASSWORD, confirm=PASSWORD, client_address=CLIENT)

    stored = User.objects.get()
    assert stored.pk == user.pk
    assert stored.confirmed_at is None
    assert stored.check_password(PASSWORD)
    assert [message.to for message in mail.outbox] == [["bob@example.com"]]


def test_user_register_losing_a_race_to_the_unique_index_is_user_already_exist(db, bob_registered_after_the_check):
    """Another request registered the same email (in another case) after the existence check."""
    with pytest.raises(UserAlreadyExist):
        registration.user_register(email="BOB@example.com", name="Bob", password=PASSWORD, confirm=PASSWORD, client_address=CLIENT)

    assert list(User.objects.values_list("email", flat=True)) == ["bob@example.com"]
    assert mail.outbox == []


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


# --- email_change ----------------------------------------------------------------------------


def test_email_change_keeps_the_change_and_queues_the_notice_when_it_fails(user, failing_mail):
    changed = account.email_change(user=user, new_email="ann.new@example.com", password=PASSWORD)

    assert changed.email == "ann.new@example.com"
    assert User.objects.get(pk=user.pk).email == "ann.new@example.com"
    assert mail.outbox == []
    (queued,) = QueuedEmail.objects.all()
    assert (queued.kind, queued.to, queued.subject) == ("email_changed", "ann@example.com", "Your email address was changed")


def test_email_change_sends_the_notice_to_the_old_address(user):
    account.email_change(user=user, new_email="ann.new@example.com", password=PASSWORD)

    assert [message.to for message in mail.outbox] == [["ann@example.com"], ["ann.new@example.com"]]


def test_email_change_to_the_same_address_in_another_case_sends_no_notice(user):
    account.email_change(user=user, new_email="Ann@Example.com", password=PASSWORD)

    assert User.objects.get(pk=user.pk).email == "Ann@Example.com"
    assert mail.outbox == []


def test_email_change_losing_a_race_to_the_unique_index_is_user_already_exist(user, bob_registered_after_the_check):
    with pytest.raises(UserAlreadyExist):
        account.email_change(user=user, new_email="BOB@example.com", password=PASSWORD)

    assert User.objects.get(pk=user.pk).email == "ann@example.com"
    assert mail.outbox == []


# --- account_confirm -------------------------------------------------------------------------


def test_account_confirm_twice_is_idempotent(user_factory):
    user = user_factory(confirmed=False)
    token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)

    first = registration.account_confirm(token=token)
    confirmed_at = User.objects.get(pk=user.pk).confirmed_at
    second = registration.account_confirm(token=token)

    assert first.pk == second.pk == user.pk
    assert confirmed_at is not None
    assert User.objects.get(pk=user.pk).confirmed_at == confirmed_at
    assert second.confirmed_at == confirmed_at


def test_account_confirm_does_not_touch_an_already_confirmed_account(user):
    confirmed_at = user.confirmed_at
    token = validation_token_make(user=user, purpose=Purpose.CONFIRMATION)

    registration.account_confirm(token=token)

    assert User.objects.get(pk=user.pk).confirmed_at == confirmed_at


# --- staff: who may act on whom --------------------------------------------------------------


@pytest.fixture
def people(user_factory) -> dict[str, User]:
    return {
        "superuser": user_factory(email="root@example.com", is_staff=True, is_superuser=True),
        "other superuser": user_factory(email="root2@example.com", is_staff=True, is_superuser=True),
        "staff": user_factory(email="staff@example.com", is_staff=True),
        "other staff": user_factory(email="staff2@example.com", is_staff=True),
        "user": user_factory(email="ann@example.com"),
    }


@pytest.mark.parametrize(
    "actor, target, allowed",
    [
        ("superuser", "other superuser", True),
        ("superuser", "staff", True),
        ("superuser", "user", True),
        ("staff", "user", True),
        ("staff", "staff", True),  # their own account
        ("staff", "other staff", False),
        ("staff", "superuser", False),
        ("user", "superuser", False),
    ],
)
def test_staff_action_allowed(people, actor, target, allowed):
    assert rules.staff_action_allowed(actor=people[actor], user=people[target]) is allowed


def test_an_operator_command_may_act_on_a_superuser(people):
    root = people["superuser"]

    assert rules.staff_action_allowed(actor=None, user=root)
    staff.tokens_revoke(user=root, actor=None)
    assert staff.user_set_active(user=root, active=False, actor=None) is True


@pytest.mark.parametrize(
    "service",
    [
        staff.user_confirm,
        staff.tokens_revoke,
        staff.staff_confirmation_send,
        staff.staff_recovery_send,
        lambda **kwargs: staff.user_set_active(active=False, **kwargs),
        lambda **kwargs: staff.user_set_active(active=True, **kwargs),
    ],
)
def test_every_staff_service_refuses_staff_acting_on_a_superuser(people, service):
    root = people["superuser"]
    session = sign_in(root)
    before = (root.is_active, root.confirmed_at)

    with pytest.raises(StaffActionForbidden):
        service(user=root, actor=people["staff"])

    root.refresh_from_db()
    session.refresh_from_db()
    assert (root.is_active, root.confirmed_at) == before
    assert session.is_open()
    assert mail.outbox == []


# --- the database constraint -----------------------------------------------------------------


def test_emails_differing_only_in_case_are_refused_by_the_database(db):
    User.objects.create(email="A@x.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="a@x.com")

    assert list(User.objects.values_list("email", flat=True)) == ["A@x.com"]
