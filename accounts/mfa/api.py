"""/api/mfa: two-factor sign-in of the signed-in user (TOTP and recovery codes)."""

from rest_framework.response import Response

from accounts import serializers as s
from core.api import ContractViewSet
from accounts.mfa import services as mfa


class TwoFactorViewSet(ContractViewSet):
    """/api/mfa: whether two-factor is on, and how many recovery codes are left."""

    actions = {"get": "two_factor_status"}

    def two_factor_status(self, request):
        status = mfa.two_factor_status(user=request.user)
        return Response({"totp": status.totp, "recovery_codes_left": status.recovery_codes_left})


class TOTPViewSet(ContractViewSet):
    """/api/mfa/totp: enroll an authenticator app, confirm it, turn two-factor off."""

    actions = {"post": "totp_enroll", "put": "totp_confirm", "delete": "totp_disable"}
    inputs = {"totp_confirm": s.TwoFactorCodeSerializer, "totp_disable": s.TwoFactorDisableSerializer}

    def totp_enroll(self, request):
        enrollment = mfa.totp_enrollment_start(user=request.user)
        # Shown this once, like the recovery codes: every answer of the API is no-store.
        return Response({"secret": enrollment.secret, "otpauth_uri": enrollment.otpauth_uri, "qr_svg": enrollment.qr_svg})

    def totp_confirm(self, request):
        codes = mfa.totp_enrollment_confirm(user=request.user, **self.validated(request))
        return Response({"message": "Two-factor authentication enabled", "recovery_codes": codes})

    def totp_disable(self, request):
        mfa.totp_disable(user=request.user, **self.validated(request))
        return Response({"message": "Two-factor authentication disabled"})


class RecoveryCodesViewSet(ContractViewSet):
    """/api/mfa/recovery-codes: ten new recovery codes; the old ones stop working."""

    actions = {"post": "recovery_codes_regenerate"}
    inputs = {"recovery_codes_regenerate": s.TwoFactorCodeSerializer}

    def recovery_codes_regenerate(self, request):
        codes = mfa.recovery_codes_regenerate(user=request.user, **self.validated(request))
        return Response({"recovery_codes": codes})
