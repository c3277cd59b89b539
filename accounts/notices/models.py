"""Security notices that could not be sent at once, kept to be retried."""

from django.db import models
from django.utils import timezone


class QueuedEmail(models.Model):
    """A notice (email changed, password changed, ...) whose first sending failed.

    `python manage.py send_queued_emails` sends the due ones again, backing off after each
    failure, until it is sent or too old to matter.
    """

    kind = models.CharField(max_length=32)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=1)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["next_attempt_at"]
        verbose_name = "queued notice"

    def __str__(self):
        return f"{self.kind} to {self.to}"
