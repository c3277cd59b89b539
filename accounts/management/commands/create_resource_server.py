"""Register a resource server that may call POST /api/introspect."""

from django.core.management.base import BaseCommand, CommandError

from accounts.clients.services import ClientError, resource_server_create


class Command(BaseCommand):
    help = (
        "Register a resource server (a service: it introspects tokens, and may use client_credentials) "
        "and print its credentials, client_id=<id> and client_secret=<secret>, one per line. The secret "
        "is shown this once only (it is stored as a digest); it authenticates with HTTP Basic."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for it, unique (e.g. the service's name).")

    def handle(self, *args, name, **options):
        try:
            server, secret = resource_server_create(name=name)
        except ClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"client_id={server.client_id}")
        self.stdout.write(f"client_secret={secret}")
