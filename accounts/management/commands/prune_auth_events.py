"""Delete old entries of the audit trail."""

from django.core.management.base import BaseCommand, CommandError

from accounts.audit.services import events_prune


class Command(BaseCommand):
    help = (
        "Delete authentication events older than --older-than DAYS days. --dry-run counts them and "
        "deletes nothing; --older-than 0 (the whole audit trail) needs --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, required=True, metavar="DAYS", help="Age in days of the oldest event kept."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the events it would delete; delete none.")
        parser.add_argument("--yes", action="store_true", help="With --older-than 0: yes, delete the whole audit trail.")

    def handle(self, *args, older_than, dry_run, yes, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        if older_than == 0 and not yes and not dry_run:
            raise CommandError(
                "--older-than 0 deletes the whole audit trail. Add --yes if that is what you mean "
                "(or --dry-run to count the events first)."
            )
        count = events_prune(older_than_days=older_than, dry_run=dry_run)
        if dry_run:
            self.stdout.write(f"{count} authentication event(s) older than {older_than} days would be deleted (dry run: none was).")
        else:
            self.stdout.write(f"{count} authentication event(s) older than {older_than} days deleted.")
