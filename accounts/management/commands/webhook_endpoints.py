"""Register, list, disable and re-key webhook endpoints."""

from django.core.management.base import BaseCommand, CommandError

from accounts.webhooks import services as webhooks


class Command(BaseCommand):
    help = (
        "Manage webhook endpoints. --add URL [--events TYPE,TYPE...] registers one (no --events: every "
        "event type) and prints `id=<id>` and `secret=whsec_...`, one per line: the secret is shown this "
        "once. --list prints one line per endpoint (id, state, events, URL). --disable ID stops delivering "
        "to one. --rotate-secret ID gives one a new secret and prints it; the old one keeps signing beside "
        "it for 24 hours. With DEBUG off, a URL must be https on a public address unless "
        "WEBHOOK_ALLOW_PRIVATE is set."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--add", metavar="URL", help="Register an endpoint at this URL.")
        action.add_argument("--list", action="store_true", help="List the endpoints.")
        action.add_argument("--disable", metavar="ID", type=int, help="Disable the endpoint with this id.")
        action.add_argument("--rotate-secret", metavar="ID", type=int, help="Give the endpoint with this id a new secret.")
        parser.add_argument(
            "--events", metavar="TYPE,TYPE", default="", help="With --add: the event types it subscribes to (default: all)."
        )

    def handle(self, *args, add, list, disable, rotate_secret, events, **options):
        try:
            if add:
                new = webhooks.endpoint_add(url=add, event_types=events.split(","))
                self.stdout.write(f"id={new.endpoint.pk}\nsecret={new.secret}")
            elif disable is not None:
                endpoint = webhooks.endpoint_disable(endpoint_id=disable, reason="disabled by an operator command")
                self.stdout.write(f"Disabled: {endpoint.pk} {endpoint.url}")
            elif rotate_secret is not None:
                self.stdout.write(f"secret={webhooks.endpoint_secret_rotate(endpoint_id=rotate_secret).secret}")
            else:
                for endpoint in webhooks.endpoints_list():
                    state = "enabled" if endpoint.is_active else "disabled"
                    self.stdout.write(f"{endpoint.pk} {state} {','.join(endpoint.event_types) or 'all'} {endpoint.url}")
        except (webhooks.EndpointRefused, webhooks.EndpointNotFound) as exc:
            raise CommandError(str(exc).strip("'\"")) from exc
