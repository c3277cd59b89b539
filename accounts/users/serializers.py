"""Input fields and shapes about a user's email, shared by the rooms above (account, signin,
passwords): the one field that needs the user's email rule (email_normalize)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers

from accounts.users.models import email_canonical, email_normalize
from core.serializers import EMAIL_MAX_LENGTH, LoginEmailField, _StringOnly


def _storable_email(value: str) -> None:
    """Refuse an address the server could neither keep nor mail as typed: one whose normalized
    form is longer than the column (NFKC expands some characters, "ﬃ" to "ffi"), or that is not
    its own canonical form (email_canonical: one spelling for the account and the mailbox; no
    invisible characters, quoted local part or domain literal; a domain IDNA 2008 can encode).
    An address Django's validator refuses is left to it (one message, not two)."""
    try:
        validate_email(value)
    except DjangoValidationError:
        return
    if len(email_normalize(value)) > EMAIL_MAX_LENGTH:
        raise serializers.ValidationError(f"Ensure this field has no more than {EMAIL_MAX_LENGTH} characters.")
    if not email_canonical(value):
        raise serializers.ValidationError("Enter a valid email address.")


class EmailAddressField(_StringOnly, serializers.EmailField):
    default_error_messages = {"not_a_string": "Not a valid string."}

    def __init__(self, **kwargs):
        super().__init__(max_length=EMAIL_MAX_LENGTH, validators=[_storable_email], **kwargs)


# An email to look up: for a recovery link (signin) or a new confirmation link (account).
class EmailSerializer(serializers.Serializer):
    email = LoginEmailField()
