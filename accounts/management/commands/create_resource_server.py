"""Register a resource server that may call POST /api/introspect."""

from django.core.management.base import BaseCommand, CommandError

from accounts.clients.models import ResourceServer
from accounts.clients.services import resource_server_create


class Command(BaseCommand):
    help = (
        "Register a resource server for token introspection and print its credentials, "
        "client_id=<id> and client_secret=<secret>, one per line. The secret is shown this once "
        "only (it is stored hashed); it authenticates with HTTP Basic."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="A name for it, unique (e.g. the service's name).")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters.")
        if ResourceServer.objects.filter(name=name).exists():
            raise CommandError(f"A resource server named {name!r} exists already.")
        server, secret = resource_server_create(name=name)
        self.stdout.write(f"client_id={server.client_id}")
        self.stdout.write(f"client_secret={secret}")
