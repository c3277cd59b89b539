"""Delete sessions that ended or expired long ago."""

from django.core.management.base import BaseCommand, CommandError

from accounts.sessions.services import sessions_expired_end, sessions_prune


class Command(BaseCommand):
    help = (
        "End the sessions that expired (the apps signed in with them get their back-channel logout), "
        "then delete sessions that ended, or expired, more than --older-than DAYS days ago (open sessions stay)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, required=True, metavar="DAYS", help="Days since a session ended or expired."
        )

    def handle(self, *args, older_than, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        expired = sessions_expired_end()
        deleted = sessions_prune(older_than_days=older_than)
        self.stdout.write(f"{expired} expired session(s) ended.")
        self.stdout.write(f"{deleted} session(s) ended or expired more than {older_than} days ago deleted.")
