"""Direct tests of the account's services (accounts.account.registration and .profile).

These cover what the API tests cannot easily show: that a failed registration email leaves no
row, that a registration losing a race to the unique index is UserAlreadyExist, that an email
change survives a lost notice, and that confirming twice is idempotent. The password reset's
are in tests/passwords/test_services.py, the staff services' in tests/staff/test_services.py, the
database's own refusal of two emails differing only in case in tests/users/test_models.py.
"""

import pytest
from django.core import mail
from django.db import transaction

from accounts.account import profile as account, registration
from accounts.account.errors import UserAlreadyExist
from accounts.notices.errors import CouldNotSendEmail
from accounts.notices.models import QueuedEmail
from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User
from tests.conftest import PASSWORD


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


def test_email_change_to_the_same_address_in_another_case_is_a_change_to_verify(user):
    """The stored string is what tokens assert and mail goes to: another case is a new address
    to prove (the local part's case can be another mailbox), notice and link as for any change."""
    account.email_change(user=user, new_email="Ann@Example.com", password=PASSWORD)

    changed = User.objects.get(pk=user.pk)
    assert (changed.email, changed.email_verified_at) == ("Ann@Example.com", None)
    assert [message.to for message in mail.outbox] == [["ann@example.com"], ["Ann@Example.com"]]


def test_email_change_to_the_very_same_address_sends_nothing(user):
    account.email_change(user=user, new_email="ann@example.com", password=PASSWORD)

    assert User.objects.get(pk=user.pk).email_verified_at is not None
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
