"""Named by migration 0005 (a field default): migrations are never edited, so the path stays."""

from accounts.sessions.models import session_id_new

__all__ = ["session_id_new"]
