"""Delete old entries of the audit trail."""

from django.core.management.base import BaseCommand, CommandError

from accounts.audit.services import events_prune


class Command(BaseCommand):
    help = "Delete authentication events older than --older-than DAYS days."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, required=True, metavar="DAYS", help="Age in days of the oldest event kept."
        )

    def handle(self, *args, older_than, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        deleted = events_prune(older_than_days=older_than)
        self.stdout.write(f"{deleted} authentication event(s) older than {older_than} days deleted.")
