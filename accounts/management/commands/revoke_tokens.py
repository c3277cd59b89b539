"""Sign a user out everywhere: every session ends, and with it every auth token issued so far."""

from django.core.management.base import BaseCommand, CommandError

from accounts.staff.services import tokens_revoke
from accounts.users.models import User


class Command(BaseCommand):
    help = "End every session of a user (sign out everywhere, admin site included): every auth token stops working. The user can log in again."

    def add_arguments(self, parser):
        parser.add_argument("email", help="Email address of the account (any case).")

    def handle(self, *args, email, **options):
        user = User.objects.with_email(email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        tokens_revoke(user=user, actor=None)
        self.stdout.write(f"Every session of {user.email} is ended: its tokens are revoked.")
