"""Two-factor enrollment takes the password now: drop the enrollments in progress, which were
started without it (maybe with a stolen token), so that none can be confirmed. Their users start
again (POST /api/mfa/totp with the password); two-factor that is on is untouched."""

from django.db import migrations


def pending_enrollments_drop(apps, schema_editor):
    apps.get_model("accounts", "TOTPDevice").objects.filter(confirmed_at__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0008_two_factor"),
    ]

    operations = [
        migrations.RunPython(pending_enrollments_drop, migrations.RunPython.noop),
    ]
