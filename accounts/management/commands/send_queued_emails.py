"""Send again the security notices that could not be sent at once."""

from django.core.management.base import BaseCommand

from accounts.notices import services as emails


class Command(BaseCommand):
    help = (
        "Send the queued security notices that are due (email changed, password changed, ...), "
        "backing off after each failure and giving up after a day. Run it every minute (cron, a "
        "scheduler, or the compose stack's mailer service)."
    )

    def handle(self, *args, **options):
        sent, failed, given_up = emails.queued_send()
        self.stdout.write(f"sent {sent}, failed {failed} (will retry), given up {given_up}")
