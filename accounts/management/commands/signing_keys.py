"""List, rotate and retire the signing keys of the auth tokens."""

from django.core.management.base import BaseCommand, CommandError

from accounts.keys import services as keys
from accounts.keys.keyring import keyring


class Command(BaseCommand):
    help = (
        "List the signing keys (one line each: kid, algorithm, state, created), or rotate them "
        "(--rotate: next becomes current, current becomes previous, a new next is made), or retire "
        "a previous key (--retire KID: no longer published, its tokens are refused; --retire=KID "
        "for a key id that begins with a dash; a key whose tokens may still be alive, signed less than "
        "TOKEN_LIFETIME ago, is retired only with --force). Every worker and node follows within a minute. "
        "Listed current first, then next, previous and retired."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--rotate", action="store_true", help="Rotate the keys.")
        action.add_argument("--retire", metavar="KID", help="Retire the previous key with this key id.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="With --retire: retire it even if tokens it signed may still be alive (their users are signed out).",
        )

    def handle(self, *args, rotate, retire, force, **options):
        if rotate:
            current = keys.keys_rotate()
            self.stdout.write(f"Rotated: {current.kid} is current.")
        elif retire:
            try:
                keys.key_retire(kid=retire, refuse_if_alive=not force)
            except keys.KeyStillInUse as exc:
                raise CommandError(f"Not retired: {exc}. Wait until then, or add --force to retire it now.") from exc
            except keys.KeyStateError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Retired: {retire}.")
        else:
            # The first keys are made on first use; listing is a use.
            keyring.keyset()
        for key in keys.keys_list():
            self.stdout.write(f"{key.kid} {key.algorithm} {key.state} {key.created_at.isoformat(timespec='seconds')}")
