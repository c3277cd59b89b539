"""Users get a public id (the `sub` of auth tokens) and a normalized email that is unique.

The normalized email replaces the unique index on lower(email): SQLite's lower() folds ASCII
only, so `A@Ébc.com` and `a@ébc.com` were two accounts there and one on PostgreSQL. Existing rows
are filled in here; if two existing accounts normalize to the same address, the migration stops
and names them (nothing is changed), so that staff can merge or rename one first.
"""

import unicodedata
import uuid

from django.db import migrations, models


def _normalize(email: str) -> str:
    # A copy of accounts.models.users.email_normalize as of this migration (migrations must not
    # change when the code does).
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def fill(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    seen: dict[str, str] = {}
    clashes = []
    for pk, email in User.objects.values_list("pk", "email").iterator(chunk_size=2000):
        key = _normalize(email)
        if key in seen:
            clashes.append(f"{seen[key]!r} and {email!r}")
        seen.setdefault(key, email)
    if clashes:
        raise RuntimeError(
            "These accounts have the same email address in another case or encoding; rename or "
            "delete one of each pair, then migrate again: " + "; ".join(clashes)
        )
    batch = []
    for user in User.objects.only("pk", "email").iterator(chunk_size=2000):
        user.email_normalized = _normalize(user.email)
        user.public_id = uuid.uuid4()
        batch.append(user)
        if len(batch) == 2000:
            User.objects.bulk_update(batch, ["email_normalized", "public_id"])
            batch = []
    User.objects.bulk_update(batch, ["email_normalized", "public_id"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_auth_event")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_normalized",
            field=models.CharField(editable=False, max_length=254, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="public_id",
            field=models.UUIDField(editable=False, null=True, verbose_name="public id"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="email_normalized",
            field=models.CharField(editable=False, max_length=254, unique=True),
        ),
        migrations.AlterField(
            model_name="user",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True, verbose_name="public id"),
        ),
        migrations.RemoveConstraint(model_name="user", name="accounts_user_email_ci_unique"),
    ]
