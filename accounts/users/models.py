"""The user: email is the login, compared case-insensitively everywhere."""

import re
import unicodedata
import uuid

import idna
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def email_normalize(email: str) -> str:
    """Return the form under which two spellings of one address are one account.

    Done here in Python, not by the database's lower() (SQLite folds ASCII only, PostgreSQL all
    of Unicode), so that both databases hold the same rule: NFKC (one encoding for characters
    that look alike, e.g. a composed and a decomposed É), then Unicode case folding.
    """
    return unicodedata.normalize("NFKC", email.strip()).casefold()


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): characters
# shown as nothing (soft hyphen, zero-width space and joiners, variation selectors, tags, ...).
# NFKC and case folding keep them, IDNA drops or refuses them: one mailbox under many accounts.
_DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def email_canonical(email: str) -> bool:
    """Whether the address is its own canonical form: the one spelling under which it is both
    an account (email_normalize) and a mailbox (email_delivery), so that what is stored is what
    mail is sent to. Not: a default-ignorable character anywhere, a quoted local part, a domain
    literal ([10.0.0.5]), a domain ending in a dot, a local part beyond ASCII, a domain label in its
    ASCII form (xn--...), or a non-ASCII domain that NFKC changes, that
    IDNA 2008 (UTS 46 mapping, STD3 rules, non-transitional) refuses, or whose UTS 46 mapping
    differs from its case folding (the account's form): e.g. "straße" (folded to "strasse", a
    domain of its own under IDNA 2008). A domain differing only in case is the same mailbox."""
    local, _, domain = email.rpartition("@")
    if _DEFAULT_IGNORABLE.search(email) or local.startswith('"') or domain.startswith("[") or domain.endswith("."):
        return False
    # A local part beyond ASCII: NFKC and case folding make look-alikes one account ("\u212aim" is
    # "kim"), while mail, without SMTPUTF8 end to end, would go to an RFC 2047 jumble.
    if not local.isascii():
        return False
    # An A-label (xn--...) is the ASCII spelling of a Unicode domain, which is then the same
    # mailbox under two account spellings: only the Unicode form is taken.
    if any(label.lower().startswith("xn--") for label in domain.split(".")):
        return False
    if domain.isascii():
        return True
    if unicodedata.normalize("NFKC", domain) != domain:
        return False
    try:
        mapped = idna.uts46_remap(domain, std3_rules=True, transitional=False)
        idna.encode(mapped)
    except UnicodeError:  # idna.IDNAError is one
        return False
    return mapped == domain.casefold()


def email_delivery(email: str) -> str:
    """Return the address mail is sent to: the stored one, its domain, if not ASCII, in its
    IDNA 2008 form (UTS 46 mapping). Python's own "idna" codec, which the mail library would use,
    is IDNA 2003: it sends some domains elsewhere (x@exᵃmple.com, the account of x@example.com,
    to xn--exmple-xc6b.com). An address stored before email_canonical, that IDNA 2008 cannot
    encode, is returned as stored (the mail library tries, or the send fails)."""
    local, at, domain = email.rpartition("@")
    if not at or domain.isascii():
        return email
    try:
        return f"{local}@{idna.encode(domain, uts46=True, transitional=False).decode('ascii')}"
    except UnicodeError:
        return email


class UserQuerySet(models.QuerySet):
    def with_email(self, email: str) -> "UserQuerySet":
        """Filter on the email, ignoring case (served by the unique index on email_normalized)."""
        return self.filter(email_normalized=email_normalize(email))


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
        extra_fields.setdefault("email_verified_at", extra_fields["confirmed_at"])
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. `is_active` keeps Django's meaning: False when staff disabled the account."""

    email = models.EmailField("email address", max_length=254, unique=True)
    # email_normalize(email), kept in step by save(); unique, so one address is one account.
    email_normalized = models.CharField(max_length=254, unique=True, editable=False)
    # The user's public id: `sub` of the auth tokens, what other services know the user by.
    public_id = models.UUIDField("public id", unique=True, default=uuid.uuid4, editable=False)
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
    # When the current email was shown to be the user's (its confirmation link was followed); None
    # after an email change until the new address's link is. Tokens say so (`email_verified`).
    email_verified_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the user deactivated the account."
    )
    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    # createsuperuser asks for the email, the name (the admin lists accounts by it; it may be left
    # empty) and the password; with --noinput, DJANGO_SUPERUSER_NAME must be set, empty or not.
    REQUIRED_FIELDS = ["name"]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).strip()
        self.email_normalized = email_normalize(self.email)

    def validate_unique(self, exclude=None):
        # The admin's forms: the same address in another case is taken too.
        super().validate_unique(exclude)
        if self.email and User.objects.with_email(self.email).exclude(pk=self.pk).exists():
            raise ValidationError({"email": "A user with that email already exists"})

    def save(self, *args, **kwargs):
        self.email_normalized = email_normalize(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_normalized"}
        super().save(*args, **kwargs)

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None

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
