"""/api/mfa: two-factor sign-in of the signed-in user (TOTP and recovery codes)."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.mfa import services as mfa
from accounts.mfa.errors import (
    InvalidTwoFactorCode,
    NoTwoFactorEnrollment,
    TwoFactorAlreadyEnabled,
    TwoFactorNotEnabled,
)
from core import errors
from core.api import ContractViewSet
from core.schema import BODY_ERRORS, TOKEN_ERRORS, MessageOutput, action_schema, message
from core.serializers import PasswordField, TwoFactorCodeField

# --- input -------------------------------------------------------------------------------------


class TwoFactorCodeSerializer(serializers.Serializer):
    code = TwoFactorCodeField()


class TOTPEnrollSerializer(serializers.Serializer):
    password = PasswordField()


class TwoFactorDisableSerializer(serializers.Serializer):
    password = PasswordField()
    code = TwoFactorCodeField()


# --- output ------------------------------------------------------------------------------------


def RecoveryCodesField() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(), help_text="Ten single-use codes, shown this once (e.g. `7KQ2M-X9D4A`)."
    )


@extend_schema_serializer(component_name="TwoFactorStatus")
class TwoFactorStatusOutput(serializers.Serializer):
    totp = serializers.BooleanField()
    recovery_codes_left = serializers.IntegerField()


@extend_schema_serializer(component_name="TOTPEnrollment")
class TOTPEnrollmentOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32, for typing into the app.")
    otpauth_uri = serializers.CharField(help_text="otpauth://totp/..., what the QR code holds.")
    qr_svg = serializers.CharField(help_text="The URI as a QR code, an SVG document.")


@extend_schema_serializer(component_name="TwoFactorEnabled")
class TwoFactorEnabledOutput(serializers.Serializer):
    message = serializers.CharField()
    recovery_codes = RecoveryCodesField()


@extend_schema_serializer(component_name="RecoveryCodes")
class RecoveryCodesOutput(serializers.Serializer):
    recovery_codes = RecoveryCodesField()


class TwoFactorViewSet(ContractViewSet):
    """/api/mfa: whether two-factor is on, and how many recovery codes are left."""

    actions = {"get": "two_factor_status"}

    @action_schema(
        "mfa", "Whether two-factor is on, and how many recovery codes are left", output=TwoFactorStatusOutput, errors=TOKEN_ERRORS
    )
    def two_factor_status(self, request):
        status = mfa.two_factor_status(user=request.user)
        return Response(TwoFactorStatusOutput(status).data)


class TOTPViewSet(ContractViewSet):
    """/api/mfa/totp: enroll an authenticator app (with the password), confirm it, turn two-factor off."""

    actions = {"post": "totp_enroll", "put": "totp_confirm", "delete": "totp_disable"}
    inputs = {
        "totp_enroll": TOTPEnrollSerializer,
        "totp_confirm": TwoFactorCodeSerializer,
        "totp_disable": TwoFactorDisableSerializer,
    }

    @action_schema(
        "mfa",
        "Start (or restart) enrolling an authenticator app, with the password; two-factor is on once confirmed",
        request=TOTPEnrollSerializer,
        output=TOTPEnrollmentOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, TwoFactorAlreadyEnabled, errors.InvalidCredentials, errors.Throttled),
    )
    def totp_enroll(self, request):
        enrollment = mfa.totp_enrollment_start(user=request.user, **self.validated(request))
        # Shown this once, like the recovery codes: every answer of the API is no-store.
        return Response(TOTPEnrollmentOutput(enrollment).data)

    @action_schema(
        "mfa",
        "Confirm the enrollment with a code of the app: two-factor is on",
        request=TwoFactorCodeSerializer,
        output=TwoFactorEnabledOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, NoTwoFactorEnrollment, InvalidTwoFactorCode, errors.Throttled),
    )
    def totp_confirm(self, request):
        codes = mfa.totp_enrollment_confirm(user=request.user, **self.validated(request))
        return Response(TwoFactorEnabledOutput({"message": "Two-factor authentication enabled", "recovery_codes": codes}).data)

    @action_schema(
        "mfa",
        "Turn two-factor off (the password, and a code of the app or a recovery code)",
        request=TwoFactorDisableSerializer,
        output=MessageOutput,
        errors=(
            *TOKEN_ERRORS, *BODY_ERRORS, TwoFactorNotEnabled, errors.InvalidCredentials, InvalidTwoFactorCode, errors.Throttled,
        ),
    )
    def totp_disable(self, request):
        mfa.totp_disable(user=request.user, **self.validated(request))
        return Response(message("Two-factor authentication disabled"))


class RecoveryCodesViewSet(ContractViewSet):
    """/api/mfa/recovery-codes: ten new recovery codes; the old ones stop working."""

    actions = {"post": "recovery_codes_regenerate"}
    inputs = {"recovery_codes_regenerate": TwoFactorCodeSerializer}

    @action_schema(
        "mfa",
        "Replace the recovery codes with ten new ones (a code of the app)",
        request=TwoFactorCodeSerializer,
        output=RecoveryCodesOutput,
        errors=(*TOKEN_ERRORS, *BODY_ERRORS, TwoFactorNotEnabled, InvalidTwoFactorCode, errors.Throttled),
    )
    def recovery_codes_regenerate(self, request):
        codes = mfa.recovery_codes_regenerate(user=request.user, **self.validated(request))
        return Response(RecoveryCodesOutput({"recovery_codes": codes}).data)
