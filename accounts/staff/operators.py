"""What operators' commands do beyond the staff actions."""

from datetime import timedelta

from django.utils import timezone

from accounts.audit.models import AuthEvent
from accounts.users.links import Purpose, validation_token_make
from accounts.users.models import User


def validation_token_issue(*, email: str, purpose: Purpose) -> str:
    """Return a validation token for the account with this email (for operators)."""
    user = User.objects.with_email(email).first()
    if user is None:
        raise User.DoesNotExist(f"No user with email {email!r}")
    return validation_token_make(user=user, purpose=purpose)


def auth_events_prune(*, older_than_days: int) -> int:
    """Delete the audit events older than the given number of days; return how many."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = AuthEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
