"""Field types of the API's input shapes, model-free: types, presence and lengths only. The rules
live in the services; each room's serializers (beside its views) are built from these."""

import re
import unicodedata

from rest_framework import serializers
from rest_framework.utils.formatting import lazy_format
from rest_framework.validators import ProhibitSurrogateCharactersValidator

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
    """Refuse anything but a string (DRF's CharField turns numbers into strings).

    Two shortcuts below use DRF internals (lazy_format, Field._args/_kwargs), written against
    DRF 3.18.3: tests/core/test_serializers.py pins that version and holds the copies to DRF's own.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            _SurrogatesRefused() if type(validator) is ProhibitSurrogateCharactersValidator else validator
            for validator in self.validators
        ]
        # DRF internal (lazy_format), no public way to format a length message up front: DRF
        # formats it on first use and keeps the result in place; the copies below share their
        # validators (and introspected_token one field), so two threads could both format one at
        # once and one fail. Formatted now, it is only read after.
        for validator in self.validators:
            if isinstance(getattr(validator, "message", None), lazy_format):
                str(validator.message)

    def __deepcopy__(self, memo):
        # DRF internal (Field._args/_kwargs), kept for speed: each serializer instance deep-copies
        # its class's declared fields, and DRF's Field.__deepcopy__ builds each copy by running
        # __init__ again, validators, messages and all: some 15 µs a field. A declared field is
        # never bound (bind() is called on the copies), so its attributes, with a list of
        # validators of its own, make the same field.
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

