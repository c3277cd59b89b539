"""Input shapes of the API: types, presence and lengths only. The rules live in accounts.services."""

import re
import unicodedata
from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail
from rest_framework.utils.formatting import lazy_format
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from accounts.users.models import email_normalize

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 150
PASSWORD_MAX_LENGTH = 4096
TOKEN_MAX_LENGTH = 1024
# A code as typed: six digits, or a recovery code (10 characters) with spaces and hyphens.
TWO_FACTOR_CODE_MAX_LENGTH = 64
# An auth token: a JWT, a few hundred characters (RS256 and many groups make it longer).
AUTH_TOKEN_MAX_LENGTH = 8192


_SURROGATE = re.compile("[\ud800-\udfff]")


class _SurrogatesRefused(ProhibitSurrogateCharactersValidator):
    """DRF's check that a string holds no lone surrogate, same message, with one regular
    expression: DRF loops over the characters in Python, some 60 µs for an auth token."""

    def __call__(self, value):
        found = _SURROGATE.search(str(value))
        if found is not None:
            raise serializers.ValidationError(self.message.format(code_point=ord(found.group())), code=self.code)


class _StringOnly:
    """Refuse anything but a string (DRF's CharField turns numbers into strings)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            _SurrogatesRefused() if type(validator) is ProhibitSurrogateCharactersValidator else validator
            for validator in self.validators
        ]
        # DRF formats a length message on its first use and keeps the result in place; the copies
        # below share their validators (and introspected_token one field), so two threads could
        # both format one at once and one fail. Formatted now, it is only read after.
        for validator in self.validators:
            if isinstance(getattr(validator, "message", None), lazy_format):
                str(validator.message)

    def __deepcopy__(self, memo):
        # Each serializer instance deep-copies its class's declared fields, and DRF's
        # Field.__deepcopy__ builds each copy by running __init__ again, validators, messages
        # and all: some 15 µs a field. A declared field is never bound (bind() is called on the
        # copies), so its attributes, with a list of validators of its own, make the same field.
        if self.parent is not None:
            return super().__deepcopy__(memo)
        clone = type(self).__new__(type(self), *self._args, **self._kwargs)
        clone.__dict__.update(self.__dict__)
        clone.validators = list(self.validators)
        clone.error_messages = dict(self.error_messages)
        return clone

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TextField(_StringOnly, serializers.CharField):
    default_error_messages = {"not_a_string": "Not a valid string."}


def _storable_email(value: str) -> None:
    """Refuse an address the server could neither keep nor mail: one whose normalized form is
    longer than the column (NFKC expands some characters, "ﬃ" to "ffi"), or whose domain has no
    IDNA form (a label over 63 characters once encoded)."""
    if len(email_normalize(value)) > EMAIL_MAX_LENGTH:
        raise serializers.ValidationError(f"Ensure this field has no more than {EMAIL_MAX_LENGTH} characters.")
    try:
        value.rpartition("@")[2].encode("idna")
    except UnicodeError:
        raise serializers.ValidationError("Enter a valid email address.") from None


class EmailAddressField(_StringOnly, serializers.EmailField):
    default_error_messages = {"not_a_string": "Not a valid string."}

    def __init__(self, **kwargs):
        super().__init__(max_length=EMAIL_MAX_LENGTH, validators=[_storable_email], **kwargs)


def _no_control_characters(value: str) -> None:
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise serializers.ValidationError("Control characters are not allowed.")


def PasswordField(**kwargs) -> TextField:
    """Return a password field: never trimmed, at most 4096 characters (checked before hashing)."""
    return TextField(trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, **kwargs)


def NameField(**kwargs) -> TextField:
    return TextField(max_length=NAME_MAX_LENGTH, validators=[_no_control_characters], **kwargs)


def TwoFactorCodeField(**kwargs) -> TextField:
    """A two-factor code (six digits) or a recovery code, as typed: trimmed, spaces inside kept
    for the service to read (accounts.mfa.services)."""
    return TextField(max_length=TWO_FACTOR_CODE_MAX_LENGTH, **kwargs)


def LoginEmailField() -> TextField:
    """An email to look up: any string up to the length limit (an invalid one matches nobody)."""
    return TextField(max_length=EMAIL_MAX_LENGTH)


class LoginSerializer(serializers.Serializer):
    email = LoginEmailField()
    password = PasswordField()
    remember = serializers.BooleanField(required=False, default=False)
    # Only for users with two-factor on: a code of their app, or a recovery code.
    otp = TwoFactorCodeField(required=False, allow_blank=True, default="")


class PasswordChangeSerializer(serializers.Serializer):
    password = PasswordField()
    new_password = PasswordField()
    confirm = PasswordField()


class EmailSerializer(serializers.Serializer):
    email = LoginEmailField()


class PasswordSerializer(serializers.Serializer):
    password = PasswordField()


class RegisterSerializer(serializers.Serializer):
    email = EmailAddressField()
    name = NameField()
    password = PasswordField()
    confirm = PasswordField()


class ProfileSerializer(serializers.Serializer):
    name = NameField(required=False, allow_blank=True)


class EmailChangeSerializer(serializers.Serializer):
    new_email = EmailAddressField()
    password = PasswordField()


class ValidationTokenSerializer(serializers.Serializer):
    token = TextField(max_length=TOKEN_MAX_LENGTH)


class PasswordResetSerializer(serializers.Serializer):
    token = TextField(max_length=TOKEN_MAX_LENGTH)
    new_password = PasswordField()
    confirm = PasswordField()


class IntrospectionSerializer(serializers.Serializer):
    # Present but empty: a token that is not active (only a missing field is a 400).
    token = TextField(max_length=AUTH_TOKEN_MAX_LENGTH, trim_whitespace=False, allow_blank=True)


# The token field, bound once. Its validation keeps no state, so every call may share it.
_INTROSPECTED_TOKEN = IntrospectionSerializer().fields["token"]


def introspected_token(data) -> str:
    """Return the token of an introspection body exactly as IntrospectionSerializer(data=data)
    validates it, or raise the ValidationError that serializer would raise.

    Each resource server calls introspection on every request it serves. A serializer instance
    costs some 20 µs to build and run for this one field; the field itself, run as the
    serializer runs it, a few (tests/test_serializers.py holds the two to the same answers).
    """
    if not isinstance(data, Mapping):
        # Not an object: the serializer's own refusal ("Invalid data. Expected a dictionary...").
        serializer = IntrospectionSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["token"]
    field = _INTROSPECTED_TOKEN
    try:
        return field.run_validation(field.get_value(data))
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({field.field_name: exc.detail}) from None
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field.field_name: get_error_detail(exc)}) from None


class TwoFactorCodeSerializer(serializers.Serializer):
    code = TwoFactorCodeField()


class TwoFactorDisableSerializer(serializers.Serializer):
    password = PasswordField()
    code = TwoFactorCodeField()
