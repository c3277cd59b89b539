"""Sign a user out everywhere: every auth token issued so far stops working."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services.staff import tokens_revoke


class Command(BaseCommand):
    help = "Revoke every auth token of a user (sign out everywhere). The user can log in again."

    def add_arguments(self, parser):
        parser.add_argument("email", help="Email address of the account (any case).")

    def handle(self, *args, email, **options):
        user = User.objects.with_email(email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        tokens_revoke(user=user, actor=None)
        self.stdout.write(f"Every token of {user.email} is revoked.")
