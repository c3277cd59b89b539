"""Reads that more than one service needs."""

from core.errors import InvalidCredentials
from accounts.users.models import User


def user_by_email(email: str) -> User:
    user = User.objects.with_email(email).first()
    if user is None:
        raise InvalidCredentials
    return user
