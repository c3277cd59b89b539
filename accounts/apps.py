from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Registers the system checks of the rooms.
        from accounts.mfa import checks  # noqa: F401
