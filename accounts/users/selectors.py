"""Reads that more than one service needs."""

from accounts.users.models import User
from core.errors import InvalidCredentials


def user_by_email(email: str) -> User:
    user = User.objects.with_email(email).first()
    if user is None:
        raise InvalidCredentials
    return user
