"""Import the users of the Flask server (Flask-Security) from its database."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from legacy_flask.importer import DEFAULT_BATCH_SIZE, FlaskImportError, flask_users_import


class Command(BaseCommand):
    help = (
        "Create here the users of the Flask server's database (tables user, profile, role, "
        "roles_users): email, name, confirmation, deactivation, roles as groups, and the password "
        "hash as it is. An email already here (in any case) is skipped, so a second run imports "
        "nothing. Prints a line per skip or failure, then 'imported <n>, skipped <m>, failed <k>'."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "database_url",
            help="The Flask server's database: postgres://user:password@host:port/name or "
            "sqlite:////absolute/path/to/file.db (read only, never written).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Write nothing; report what a real run would do."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Users read and written per transaction (default {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args, database_url, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not settings.FLASK_PASSWORD_SALT:
            self.stderr.write(
                "Warning: FLASK_PASSWORD_SALT is not set: imported passwords will not verify until it "
                "is set to the Flask app's SECURITY_PASSWORD_SALT."
            )
        if dry_run:
            self.stdout.write("Dry run: nothing is written; the lines below are what a real run would do.")
        try:
            report = flask_users_import(
                url=database_url,
                dry_run=dry_run,
                batch_size=batch_size,
                report_line=self.stdout.write,
                report_progress=self.stderr.write,
            )
        except FlaskImportError as exc:
            raise CommandError(str(exc)) from exc
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        self.stdout.write(report.summary)
