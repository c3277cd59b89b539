"""Direct tests of the staff services and accounts.privileges.rules: who may act on whom."""

import pytest
from django.core import mail

from accounts.privileges import rules
from accounts.privileges.errors import StaffActionForbidden
from accounts.staff import services as staff
from accounts.users.models import User
from tests.conftest import sign_in


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
