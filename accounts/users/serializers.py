"""Input fields and shapes about a user's email, shared by the rooms above (account, signin,
passwords): the one field that needs the user's email rule (email_normalize)."""

from rest_framework import serializers

from accounts.users.models import email_normalize
from core.serializers import EMAIL_MAX_LENGTH, LoginEmailField, _StringOnly


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


# An email to look up: for a recovery link (signin) or a new confirmation link (account).
class EmailSerializer(serializers.Serializer):
    email = LoginEmailField()
