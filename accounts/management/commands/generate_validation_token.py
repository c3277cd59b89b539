"""Print a validation token for a user, as the emails would carry it."""

from django.core.management.base import BaseCommand, CommandError

from accounts.users.links import Purpose, validation_token_for_email
from accounts.users.models import User


class Command(BaseCommand):
    help = "Print a confirmation token (or, with --purpose recovery, a recovery token) for a user."

    def add_arguments(self, parser):
        parser.add_argument("email", help="Email address of the account (any case).")
        parser.add_argument(
            "--purpose",
            choices=[purpose.value for purpose in Purpose],
            default=Purpose.CONFIRMATION.value,
            help="What the token is for (default: confirmation).",
        )

    def handle(self, *args, email, purpose, **options):
        try:
            token = validation_token_for_email(email=email.strip(), purpose=Purpose(purpose))
        except User.DoesNotExist as exc:
            raise CommandError(f"No user with email {email!r}.") from exc
        self.stdout.write(token)
