"""The user: email is the login, compared case-insensitively everywhere."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserQuerySet(models.QuerySet):
    def with_email(self, email: str) -> "UserQuerySet":
        """Filter on the email, ignoring case (served by the index on lower(email))."""
        return self.alias(email_lower=Lower("email")).filter(email_lower=email.lower())


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.with_email(username).get()

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).strip(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        """Create a staff superuser; it is confirmed, since an operator made it."""
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("confirmed_at", timezone.now())
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. `is_active` keeps Django's meaning: False when staff disabled the account."""

    email = models.EmailField("email address", max_length=254, unique=True)
    # Django's 128 characters hold its own hashes, not all of those imported from the Flask server
    # (`flask_security$` and a sha512_crypt or pbkdf2_sha512 hash: 135 to 150).
    password = models.CharField("password", max_length=255)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        "staff status",
        default=False,
        help_text="Designates whether the user can log into this admin site.",
    )
    is_active = models.BooleanField(
        "active",
        default=True,
        help_text="Unselect this to disable the account: login is refused and tokens stop working.",
    )
    date_joined = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the user deactivated the account."
    )
    # Auth tokens issued before this instant are refused: moved forward by password change,
    # recovery reset, reactivation, disabling and staff sign-out. One column instead of a
    # table of issued tokens.
    tokens_valid_after = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    # createsuperuser asks for the email and password only; the name can be set in the admin.
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_ci_unique",
                violation_error_message="A user with that email already exists",
            ),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).strip()

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def is_deactivated(self) -> bool:
        return self.deactivated_at is not None

    @property
    def state(self) -> str:
        """Return the account state of the contract: unconfirmed, active, deactivated or disabled."""
        if not self.is_active:
            return "disabled"
        if not self.is_confirmed:
            return "unconfirmed"
        if self.is_deactivated:
            return "deactivated"
        return "active"
