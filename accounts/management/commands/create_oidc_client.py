"""Register an app that signs users in through this server (OpenID Connect, code + PKCE)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.clients.models import DEFAULT_SCOPES, SCOPES
from accounts.clients.services import ClientError, client_create


class Command(BaseCommand):
    help = (
        "Register an OpenID Connect client and print client_id=<id> and, for a confidential client, "
        "client_secret=<secret>, one per line. The secret is shown this once only (it is stored as a "
        "digest). Redirect URIs are matched exactly."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The app's name, unique; users see it on the consent page.")
        parser.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris", metavar="URI",
                            help="Where codes are sent back (repeat for several).")
        parser.add_argument("--public", action="store_true",
                            help="A public client (a single-page or native app): no secret, PKCE only.")
        parser.add_argument("--first-party", action="store_true", help="Your own app: users are not asked for consent.")
        parser.add_argument("--scopes", default=DEFAULT_SCOPES,
                            help=f'The scopes it may ask for, space-separated (default "{DEFAULT_SCOPES}"; known: {" ".join(SCOPES)}).')
        parser.add_argument("--post-logout-redirect-uri", action="append", default=[], dest="post_logout_redirect_uris",
                            metavar="URI", help="Where end_session may send the user back (repeat for several).")
        parser.add_argument("--backchannel-logout-uri", default="", metavar="URI",
                            help="Where a logout token is posted when a session it signed in with ends.")
        parser.add_argument("--id-token-algorithm", default="RS256", choices=["RS256", "ES256"],
                            help="How its ID tokens are signed (default RS256).")

    def handle(self, *args, name, redirect_uris, public, first_party, scopes, post_logout_redirect_uris,
               backchannel_logout_uri, id_token_algorithm, **options):
        try:
            client, secret = client_create(
                name=name,
                redirect_uris=redirect_uris,
                public=public,
                first_party=first_party,
                scopes=scopes,
                post_logout_redirect_uris=post_logout_redirect_uris,
                backchannel_logout_uri=backchannel_logout_uri,
                algorithm=id_token_algorithm,
            )
        except ClientError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"client_id={client.client_id}")
        if secret:
            self.stdout.write(f"client_secret={secret}")
