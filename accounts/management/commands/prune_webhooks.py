"""Delete old webhook events and their delivery log."""

from django.core.management.base import BaseCommand, CommandError

from accounts.webhooks.services import events_prune


class Command(BaseCommand):
    help = (
        "Delete webhook events older than --older-than DAYS days whose deliveries are all done "
        "(delivered or failed), with their deliveries and attempts; events still being delivered are "
        "kept. --dry-run counts them and deletes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, required=True, metavar="DAYS", help="Age in days of the oldest event kept."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the events it would delete; delete none.")

    def handle(self, *args, older_than, dry_run, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        try:
            count = events_prune(older_than_days=older_than, dry_run=dry_run)
        except OverflowError as exc:
            raise CommandError("--older-than reaches before the year 1: give fewer days.") from exc
        if dry_run:
            self.stdout.write(f"{count} webhook event(s) older than {older_than} days would be deleted (dry run: none was).")
        else:
            self.stdout.write(f"{count} webhook event(s) older than {older_than} days deleted.")
