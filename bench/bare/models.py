"""The benchmark database's user rows, read as a model of this project (no migrations: the table
is the auth server's, seeded by bench/seed.py)."""

from django.db import models


class SeededUser(models.Model):
    """Every column of the seeded user table, so a lookup reads the same row the server reads."""

    password = models.CharField(max_length=255)
    last_login = models.DateTimeField(null=True)
    is_superuser = models.BooleanField()
    email = models.CharField(max_length=254)
    email_normalized = models.CharField(max_length=254)
    public_id = models.UUIDField()
    name = models.CharField(max_length=150)
    is_staff = models.BooleanField()
    is_active = models.BooleanField()
    date_joined = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True)
    deactivated_at = models.DateTimeField(null=True)

    class Meta:
        managed = False
        db_table = "accounts_user"
