"""Named by migration 0005 (a field default): migrations are never edited, so the path stays."""

from accounts.clients.models import client_id_new

__all__ = ["client_id_new"]
