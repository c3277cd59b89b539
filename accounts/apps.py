from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the system checks of the rooms.
        from accounts.mfa import checks  # noqa: F401

        # Every way a session ends reaches the apps signed in with it (Back-Channel Logout).
        from accounts.oidc.backchannel import sessions_ended
        from accounts.sessions.services import ended_listeners

        if sessions_ended not in ended_listeners:
            ended_listeners.append(sessions_ended)
