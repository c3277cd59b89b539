from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the system checks of the rooms.
        from accounts.mfa import checks  # noqa: F401
        from accounts.passkeys import checks as passkey_checks  # noqa: F401

        # Every way a session ends reaches the apps signed in with it (Back-Channel Logout).
        from accounts.oidc.backchannel import sessions_ended
        from accounts.oidc.services import apps_of_sessions
        from accounts.sessions import services as sessions

        if sessions_ended not in sessions.ended_listeners:
            sessions.ended_listeners.append(sessions_ended)
        if apps_of_sessions not in sessions.apps_of_sessions:
            sessions.apps_of_sessions.append(apps_of_sessions)

        # /metrics reads the webhooks' queue from the database at each scrape.
        from accounts.webhooks.services import queue_stats
        from core import metrics

        metrics.webhook_queue_read(queue_stats)
