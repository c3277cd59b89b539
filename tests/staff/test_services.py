"""Direct tests of the staff services and accounts.privileges.rules: who may act on whom."""

import pytest
from django.contrib.auth.models import Group, Permission
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


# --- staff: the groups and permissions of the account acted on -------------------------------


def _perms(*codenames: str) -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))


@pytest.fixture
def editor(user_factory) -> User:
    member = user_factory(email="editor@example.com", is_staff=True)
    member.user_permissions.set(_perms("view_user", "change_user"))
    return member


def test_staff_may_not_act_on_a_member_of_a_group_they_are_not_in(editor, user_factory):
    member = user_factory(email="bill@example.com")
    member.groups.add(Group.objects.create(name="billing-admins"))  # no permission: its name is in the tokens

    assert not rules.staff_action_allowed(actor=editor, user=member)


def test_staff_in_the_same_groups_may_act(editor, user_factory):
    group = Group.objects.create(name="billing-admins")
    group.permissions.set(_perms("view_session"))
    member = user_factory(email="bill@example.com")
    member.groups.add(group)
    editor.groups.add(group, Group.objects.create(name="helpdesk"))

    assert rules.staff_action_allowed(actor=editor, user=member)


@pytest.mark.parametrize(
    "editor_holds",
    [
        "none",
        "via a group",  # the editor holds the permission through a group of theirs
    ],
)
def test_permissions_of_the_account_must_be_the_actors_too(editor, user_factory, editor_holds):
    member = user_factory(email="bill@example.com")
    member.user_permissions.set(_perms("delete_user"))
    if editor_holds == "via a group":
        group = Group.objects.create(name="deleters")
        group.permissions.set(_perms("delete_user"))
        editor.groups.add(group)

    assert rules.staff_action_allowed(actor=editor, user=member) is (editor_holds == "via a group")


def test_a_permission_through_the_accounts_group_counts(editor, user_factory):
    """A permission the member holds through a group shared with the editor is the editor's too;
    one held directly, that the editor lacks, is not."""
    group = Group.objects.create(name="billing-admins")
    group.permissions.set(_perms("delete_user"))
    member = user_factory(email="bill@example.com")
    member.groups.add(group)
    editor.groups.add(group)
    assert rules.staff_action_allowed(actor=editor, user=member)

    member.user_permissions.set(_perms("add_user"))
    assert not rules.staff_action_allowed(actor=editor, user=member)


def test_a_superuser_may_act_on_any_group_member(people):
    member = people["user"]
    group = Group.objects.create(name="billing-admins")
    group.permissions.set(_perms("delete_user"))
    member.groups.add(group)

    assert rules.staff_action_allowed(actor=people["superuser"], user=member)


def test_the_rule_costs_one_query_for_staff_and_none_for_a_superuser(people, editor, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert rules.staff_action_allowed(actor=editor, user=people["user"])
    with django_assert_num_queries(0):
        assert rules.staff_action_allowed(actor=people["superuser"], user=people["user"])


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
