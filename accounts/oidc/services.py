"""Consents: what a user allowed a client, remembered until withdrawn; and ending a grant."""

from django.db import transaction
from django.utils import timezone

from accounts.audit import services as audit
from accounts.clients.models import Client
from accounts.oidc.models import AccessToken, Consent, IDToken, RefreshToken
from accounts.users.models import User
from accounts.webhooks.events import user_event_emit
from core import metrics
from core.errors import NotFound


def apps_of_sessions(session_pks: list[int]) -> dict[int, list[str]]:
    """The names of the apps each session signed in to (given an ID token), one query."""
    found: dict[int, list[str]] = {}
    rows = IDToken.objects.filter(session_id__in=session_pks).values_list("session_id", "application__name").distinct()
    for session_pk, name in rows:
        found.setdefault(session_pk, []).append(name)
    for names in found.values():
        names.sort()
    return found


def consent_covers(*, user: User, client: Client, scopes) -> bool:
    consent = Consent.objects.filter(user=user, client=client).first()
    return consent is not None and consent.covers(scopes)


def consent_give(*, user: User, client: Client, scopes) -> Consent:
    """Remember that the user allowed these scopes to the client (added to what they allowed before)."""
    now = timezone.now()
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scope": " ".join(sorted(set(scopes))), "created_at": now, "updated_at": now}
        )
        if not created and not consent.covers(scopes):
            consent.scope = " ".join(sorted(set(consent.scope.split()) | set(scopes)))
            consent.updated_at = now
            consent.save(update_fields=["scope", "updated_at"])
        if created or consent.updated_at == now:
            user_event_emit(
                "consent.granted", user=user, client_id=client.client_id, client_name=client.name,
                scopes=consent.scope.split(),
            )
    audit.record(audit.Type.CONSENT_GIVEN, user=user, detail=f"{client.name}: {' '.join(sorted(set(scopes)))}")
    metrics.oidc_counted("consent_given")
    return consent


def consent_refused(*, user: User, client: Client, scopes) -> None:
    audit.record(audit.Type.CONSENT_REFUSED, user=user, detail=f"{client.name}: {' '.join(scopes)}")
    metrics.oidc_counted("consent_refused")


def consents_of(*, user: User) -> list[Consent]:
    return list(Consent.objects.filter(user=user).select_related("client").order_by("-updated_at", "-pk"))


def grants_revoke(*, user: User, client: Client) -> None:
    """Revoke every token the client holds for the user: refresh tokens (one UPDATE), access
    tokens (one DELETE)."""
    now = timezone.now()
    with transaction.atomic():
        RefreshToken.objects.filter(user=user, application=client, revoked__isnull=True).update(revoked=now, updated=now)
        AccessToken.objects.filter(user=user, application=client).delete()


def consent_withdraw(*, user: User, consent_id: str, actor: User | None = None) -> None:
    """Withdraw one of the user's consents and revoke the client's tokens, or raise NotFound.
    `actor`: the staff member who did it for the user (the admin), if not the user."""
    consent = Consent.objects.filter(user=user, public_id=consent_id).select_related("client").first() if consent_id else None
    if consent is None:
        raise NotFound
    with transaction.atomic():
        consent.delete()
        grants_revoke(user=user, client=consent.client)
        user_event_emit(
            "consent.revoked", user=user, client_id=consent.client.client_id, client_name=consent.client.name,
            by="user" if actor is None or actor.pk == user.pk else "staff",
        )
    by = f" by {actor.email}" if actor is not None and actor.pk != user.pk else ""
    audit.record(audit.Type.CONSENT_WITHDRAWN, user=user, detail=f"{consent.client.name}{by}")


def grant_revoke(*, refresh_token: RefreshToken, actor: User) -> bool:
    """Revoke one grant (a refresh token's whole family and its access tokens), for staff; False
    if it was revoked already."""
    if refresh_token.revoked is not None:
        return False
    from accounts.oidc.validator import family_revoke

    if refresh_token.token_family:
        family_revoke(refresh_token.token_family)
    else:
        refresh_token.revoke()
    audit.record(
        audit.Type.GRANT_REVOKED,
        user=refresh_token.user,
        detail=f"{refresh_token.application.name}: its tokens revoked by {actor.email}",
    )
    return True
