"""The API's input serializers: their fields' copies (a fast __deepcopy__) behave as DRF's own."""

import copy
import inspect

import pytest
import rest_framework
from django.http import QueryDict
from rest_framework import fields as drf_fields
from rest_framework import serializers as drf_serializers
from rest_framework.utils.formatting import lazy_format

import core.serializers as fields
from accounts.account import api as account_api
from accounts.oidc import introspection_serializers as clients_serializers
from accounts.oidc.introspection_serializers import IntrospectionSerializer, introspected_token
from accounts.mfa import api as mfa_api
from accounts.passwords import api as passwords_api
from accounts.signin import api as signin_api
from accounts.signin.api import LoginSerializer
from accounts.users import serializers as users_serializers

# Where the rooms keep their input serializers (beside their views).
INPUT_MODULES = [signin_api, account_api, passwords_api, mfa_api, clients_serializers, users_serializers]

SERIALIZERS = [
    value
    for module in INPUT_MODULES
    for value in vars(module).values()
    if inspect.isclass(value)
    and issubclass(value, drf_serializers.Serializer)
    and value.__module__ == module.__name__
    # The answers' shapes (…Output) render, they validate nothing.
    and not value.__name__.endswith("Output")
]


def test_drf_is_the_version_the_shortcuts_were_written_against():
    # core.serializers._StringOnly uses DRF internals (Field._args/_kwargs in __deepcopy__, and
    # lazy_format's formatting in place): on an upgrade, re-check them, then this version.
    assert rest_framework.VERSION == "3.18.3", (
        f"DRF {rest_framework.VERSION}: re-check the DRF internals core.serializers._StringOnly relies on "
        "(Field.__deepcopy__, _args/_kwargs, rest_framework.utils.formatting.lazy_format), then update this pin"
    )

INPUTS = [
    {},
    {"email": "ann@example.com", "password": "correct horse", "name": "Ann", "token": "eyJ.a.b", "code": "123 456"},
    {"email": "not an email", "password": "", "name": "x" * 200, "token": "", "code": "12"},
    {"email": 5, "password": ["x"], "name": None, "token": {"a": 1}, "code": 123456, "remember": "yes"},
    {"email": "a\x00@example.com", "password": "p\ud800", "name": "  Ann  ", "token": " eyJ ", "code": "x" * 65},
    {"email": "ann@" + "a" * 64 + ".com", "password": "x" * 4097, "new_password": "", "token": "t" * 9000},
]


def test_every_input_serializer_is_covered():
    assert {serializer.__name__ for serializer in SERIALIZERS} == {
        "LoginSerializer", "PasswordChangeSerializer", "PasswordSerializer", "EmailSerializer", "RegisterSerializer",
        "ProfileSerializer", "EmailChangeSerializer", "ValidationTokenSerializer", "PasswordResetSerializer",
        "IntrospectionSerializer", "TwoFactorCodeSerializer", "TwoFactorDisableSerializer", "TOTPEnrollSerializer",
    }


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda serializer: serializer.__name__)
def test_each_instance_has_fields_of_its_own(serializer):
    first, second = serializer().fields, serializer().fields

    for name, field in first.items():
        other = second[name]
        assert field is not other and type(field) is type(other)
        assert field.parent is not other.parent and field.field_name == other.field_name == name
        assert field.validators is not other.validators
        assert [type(validator) for validator in field.validators] == [type(validator) for validator in other.validators]
    # The class's declared fields stay unbound.
    assert all(field.parent is None for field in serializer._declared_fields.values())


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda serializer: serializer.__name__)
def test_shared_validators_hold_no_message_left_to_format(serializer):
    # Copies share their validators: a message DRF formats lazily (and caches in place on first
    # use) must already be formatted, or two threads formatting it at once could fail.
    for field in [*serializer._declared_fields.values(), *serializer().fields.values()]:
        for validator in field.validators:
            message = getattr(validator, "message", None)
            if isinstance(message, lazy_format):
                assert message.result is not None, (serializer.__name__, field)


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda serializer: serializer.__name__)
@pytest.mark.parametrize("data", INPUTS)
def test_validation_is_what_drfs_own_copies_give(serializer, data, monkeypatch):
    ours = serializer(data=data)
    ours_valid = ours.is_valid()

    monkeypatch.setattr(fields._StringOnly, "__deepcopy__", drf_fields.Field.__deepcopy__)
    reference = serializer(data=data)
    reference_valid = reference.is_valid()

    assert ours_valid == reference_valid
    assert ours.errors == reference.errors
    assert ours.validated_data == reference.validated_data


def test_a_bound_field_is_copied_unbound_as_drf_does():
    bound = LoginSerializer().fields["email"]

    clone = copy.deepcopy(bound)

    assert clone.parent is None and clone.field_name is None


INTROSPECTION_BODIES = [
    {"token": "eyJ.a.b"},
    {"token": ""},
    {"token": "  eyJ.a.b  "},
    {"token": "t" * 8192},
    {"token": "t" * 8193},
    {"token": 5},
    {"token": None},
    {"token": ["eyJ.a.b"]},
    {"token": {"a": 1}},
    {"token": "a\x00b"},
    {"token": "a\ud800b"},
    {"token": "eyJ.a.b", "token_type_hint": "access_token", "other": 1},
    {},
    {"tokens": "eyJ.a.b"},
    [],
    ["eyJ.a.b"],
    "token=eyJ.a.b",
    5,
    None,
]


def _form(**fields):
    body = QueryDict(mutable=True)
    for name, values in fields.items():
        body.setlist(name, values)
    return body


@pytest.mark.parametrize(
    "data",
    [*INTROSPECTION_BODIES, _form(token=["eyJ.a.b"]), _form(token=["first", "last"]), _form(token=[]), _form(other=["x"])],
    ids=lambda data: repr(data)[:40],
)
def test_the_introspected_token_is_what_the_serializer_gives(data):
    serializer = IntrospectionSerializer(data=data)
    if serializer.is_valid():
        assert introspected_token(data) == serializer.validated_data["token"]
    else:
        with pytest.raises(drf_serializers.ValidationError) as refused:
            introspected_token(data)
        assert refused.value.detail == serializer.errors
        # The codes too: the exception handler's message is built from them.
        assert refused.value.get_codes() == drf_serializers.ValidationError(serializer.errors).get_codes()
