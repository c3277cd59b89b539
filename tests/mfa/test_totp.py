"""accounts.mfa.totp, the one module that calls pyotp and segno, and its setting MFA_ISSUER.

The codes a user's app would show are computed with pyotp at a pinned clock (`totp_clock`), so
no test depends on the wall clock crossing a 30-second boundary.
"""

import re
import xml.etree.ElementTree as ET

import pyotp
import pytest

from accounts.mfa import totp
from tests.conftest import run
from tests.conftest import totp_code as code

STEP = totp.INTERVAL


def test_a_secret_is_160_random_bits_in_base32():
    secrets_ = {totp.secret_new() for _ in range(20)}

    assert len(secrets_) == 20
    for secret in secrets_:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)


def test_the_otpauth_uri_names_the_issuer_and_the_email(settings):
    settings.MFA_ISSUER = "Example Corp"
    secret = totp.secret_new()

    uri = totp.otpauth_uri(secret=secret, account="ann@example.com")

    assert uri.startswith("otpauth://totp/Example%20Corp:ann%40example.com?")
    parsed = pyotp.parse_uri(uri)
    assert (parsed.secret, parsed.name, parsed.issuer, parsed.digits, parsed.interval) == (
        secret, "ann@example.com", "Example Corp", 6, 30,
    )
    assert "algorithm" not in uri  # SHA-1, the default every app assumes


def test_the_issuer_defaults_to_auth_server():
    uri = totp.otpauth_uri(secret=totp.secret_new(), account="ann@example.com")

    assert pyotp.parse_uri(uri).issuer == "Auth server"


def test_the_qr_code_is_an_svg_document():
    svg = totp.qr_svg("otpauth://totp/Auth%20server:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Auth%20server")

    assert svg.startswith("<svg")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}path") is not None


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_one_step_of_skew_is_accepted_either_side(totp_clock, steps, accepted):
    secret = totp.secret_new()
    current = totp.code_step(secret=secret, code=code(secret, totp_clock.now))

    step = totp.code_step(secret=secret, code=code(secret, totp_clock.now, steps))

    assert current == int(totp_clock.now.timestamp()) // STEP
    assert step == (current + steps if accepted else None)


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 345"])
def test_what_is_not_six_ascii_digits_is_no_code(totp_clock, typed):
    assert totp.code_step(secret=totp.secret_new(), code=typed) is None


@pytest.mark.parametrize("value", ["", "  ", "Acme:Auth"])
def test_an_unusable_issuer_stops_the_start(project, value):
    result = run(
        project, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='authserver.settings'; django.setup()",
        DEBUG="true", MFA_ISSUER=value,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured: MFA_ISSUER=" in result.stderr
