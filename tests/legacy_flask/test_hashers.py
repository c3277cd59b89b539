"""FlaskSecurityPasswordHasher: the Flask server's password hashes, checked as Flask-Security did.

Two sources of hashes: reference hashes made by the Flask server's own stack (Flask-Security-Too
5.3.3's hash_password with passlib 1.7.4 and bcrypt 4.0.1, SECURITY_PASSWORD_SALT
"flask-salt-for-tests"), and hashes made in the test as Flask-Security makes them, with libpass
(tests/support/flask_server.py).
"""

import logging

import passlib.hash
import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

import authserver.settings as project_settings
from legacy_flask import hashers
from legacy_flask.hashers import FlaskSecurityPasswordHasher, flask_hash_check, flask_hash_encode, flask_hash_scheme, flask_password_sign
from tests.support.flask_server import FLASK_SALT, LOW_COSTS, flask_hash, flask_signed, unusable_hashes

REFERENCE_SALT = "flask-salt-for-tests"
LONG = "x" * 100
# (scheme, password, hash) from Flask-Security-Too 5.3.3 + passlib 1.7.4 + bcrypt 4.0.1, where
# passlib cut the signed password to 72 bytes for bcrypt without a word.
REFERENCE_HASHES = [
    ('bcrypt', 'correct horse battery', '$2b$04$Gg17VWDcMsFXChI783LuC.Lnrm668pdOp3p.l6O6rTEzwP38qs8Ge'),
    ('bcrypt', 'pässwörd ünïcode ✓', '$2b$04$laEsNFNmQGVlU4TwoqMwJuQ0hbWA0IVwFST1RwZsKnQCrhiBAbgw6'),
    ('bcrypt', LONG, '$2b$04$rH6ndS7ViH.gARZ3BD15FetV3vP2YH2LAsmzk1y5dg38KIVdcE52.'),
    ('sha512_crypt', 'correct horse battery', '$6$rounds=1000$jMxX6hUvHaTCxJlP$zd/Ohod2gNKLbm4HDaUaTNmeE/FJx3f3iNfAARL8hax8HvKgjtHvZmbYtrpWHwhPz5t3CCrdfs/dYrESo4Ld3.'),
    ('sha512_crypt', 'pässwörd ünïcode ✓', '$6$rounds=1000$j5T6B6KcMzaQSwKc$e6n6KYKvPPMpEO1pPMjqBFoHLivmHHccPwXNR8MTx7ShxiMLUsxfTvoo8YOjmUPU.x5S1noWcysxh2Fc7iLMc0'),
    ('sha512_crypt', LONG, '$6$rounds=1000$.R3QoMT0mCHqQOBB$Unq4Ql9XvQAPcYYi.k9IpY/R.U7a35XNLueubcA1bMdxa.wyqfD7/G3zsZTR5LCZWLyzTbO95EJQ2mLr3gZd/.'),
    ('sha256_crypt', 'correct horse battery', '$5$rounds=1000$REGWE8IbgGxJC9jg$3dwWcm9hLnEouaQpXAJv/apPWY9V6SoyfmpbMnnqs89'),
    ('sha256_crypt', 'pässwörd ünïcode ✓', '$5$rounds=1000$dsiqBARzaWoOGuUx$VcCoM1fHhj1frsWlbH.RWZZOJPunH25JiZzFFwYtnJ.'),
    ('sha256_crypt', LONG, '$5$rounds=1000$eVyyCohXni2CHje7$b6aT4dvUeKdfIsIWF0H/46Ou9SAiTiGNBYA7FuLBCFD'),
    ('pbkdf2_sha512', 'correct horse battery', '$pbkdf2-sha512$1000$RwiBUOrdm9Pam5OSkhLCWA$dMOShHQ8vJMQ0OLqSD2BO0BwT4bniLk/LGKLQyHRKSGUfoEzZT60tZgg9LZ8/E8rP7KYgNy3BXB7yocjCs2B3A'),
    ('pbkdf2_sha512', 'pässwörd ünïcode ✓', '$pbkdf2-sha512$1000$1zqH0Ppf652TkhLiXIux1g$5uunAZ7QAmhCe/FXu.3Lri2HS226xU3dqKlRdkEEJ66eSeANw1jP2zz2dK/PYa3fVhhNhlH8Kgh8hRWAokA9hA'),
    ('pbkdf2_sha512', LONG, '$pbkdf2-sha512$1000$jVHKee89p5TyPsc4Z2yNEQ$E9JqW/UPhGGljkPQz6ZHtYCjueEjwYWzb/qBOJhwTw/O0L1ehUjrUU.P.15bg2uOWixob6i/Z.E9LUI7cqCf1A'),
    ('argon2', 'correct horse battery', '$argon2id$v=19$m=1024,t=1,p=1$qNW6F2JsbQ0BICTE2Pv/nw$yrytcxvuJ5laQFrFsfiK3hoASOBjnm+54jKu8W8YJEs'),
    ('argon2', 'pässwörd ünïcode ✓', '$argon2id$v=19$m=1024,t=1,p=1$pFTKuXduDeFc631vrdWasw$AIS+HS8P+znOtxu6ZoWFTD8vRZJVuYs/aARcEX9xr44'),
    ('argon2', LONG, '$argon2id$v=19$m=1024,t=1,p=1$6z0HAIAQQojRek8pZay11g$tbOX4isB51TgAFSRwRNNizYHCAy8F25F0r+LuFLxMHc'),
]


@pytest.fixture
def salt(settings):
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    settings.FLASK_PASSWORD_SALT = FLASK_SALT
    return settings


class TestSettings:
    def test_listed_right_after_the_preferred_argon2_hasher(self):
        assert project_settings.PASSWORD_HASHERS[:2] == [
            "accounts.passwords.hashers.Argon2PasswordHasher",
            "legacy_flask.hashers.FlaskSecurityPasswordHasher",
        ]

    def test_salt_unset_by_default(self):
        assert project_settings.FLASK_PASSWORD_SALT is None


class TestReferenceHashes:
    @pytest.mark.parametrize("scheme, password, reference", REFERENCE_HASHES)
    def test_the_flask_servers_own_hashes_verify(self, settings, scheme, password, reference):
        settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
        settings.FLASK_PASSWORD_SALT = REFERENCE_SALT
        encoded = flask_hash_encode(reference)

        assert encoded == f"flask_security${reference}"
        assert flask_hash_scheme(reference) == scheme
        assert check_password(password, encoded)
        assert not check_password(password + " ", encoded)
        assert not check_password(password.upper(), encoded)

    def test_another_salt_verifies_nothing(self, settings):
        settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
        settings.FLASK_PASSWORD_SALT = "another salt"
        for _, password, reference in REFERENCE_HASHES:
            assert not check_password(password, flask_hash_encode(reference))


class TestSchemes:
    @pytest.mark.parametrize("scheme", sorted(LOW_COSTS))
    def test_each_scheme_verifies(self, salt, scheme):
        encoded = flask_hash_encode(flask_hash("correct horse battery", scheme))

        assert flask_hash_scheme(encoded.split("$", 1)[1]) == scheme
        assert isinstance(identify_hasher(encoded), FlaskSecurityPasswordHasher)
        assert check_password("correct horse battery", encoded)
        assert not check_password("correct horse batterz", encoded)

    @pytest.mark.parametrize("ident", ["2a", "2b", "2y"])
    def test_bcrypt_idents(self, salt, ident):
        hashed = passlib.hash.bcrypt.using(rounds=4, ident=ident).hash(flask_signed("pw 1234")[:72])
        assert hashed.startswith(f"${ident}$")
        assert check_password("pw 1234", flask_hash_encode(hashed))

    @pytest.mark.parametrize(
        "unchecked",
        [
            "",
            "correct horse battery",  # plaintext
            "5f4dcc3b5aa765d61d8327deb882cf99",  # unsalted MD5
            "abJnggxhB/yWI",  # des_crypt: no prefix, reads 8 characters
            "$2b$04$Gg17VWDcMsFXChI783LuC.Lnrm668pdOp3p.l6O6rTEzw",  # truncated bcrypt
            "$2x$04$Gg17VWDcMsFXChI783LuC.Lnrm668pdOp3p.l6O6rTEzwP38qs8Ge",  # buggy variant, never passlib's
            "$2b$03$Gg17VWDcMsFXChI783LuC.Lnrm668pdOp3p.l6O6rTEzwP38qs8Ge",  # cost below bcrypt's minimum
            "$6$rounds=1000$jMxX6hUvHaTCxJlP",  # settings without a checksum
            "$6$rounds=1000$jMxX6hUvHaTCxJlP$zd/Ohod2",  # truncated checksum
            "pbkdf2_sha256$600000$salt$digest",  # Django's own format
        ],
    )
    def test_hashes_of_no_checkable_scheme(self, salt, unchecked):
        assert flask_hash_scheme(unchecked) is None
        assert flask_hash_encode(unchecked) is None
        assert not flask_hash_check("correct horse battery", unchecked, salt=FLASK_SALT)


class TestBcryptLimit:
    """The signed password is 88 characters; bcrypt reads 72 bytes, as the old passlib did."""

    @pytest.mark.parametrize("password", ["", "a", "correct horse battery", LONG, "é" * 500])
    def test_signed_password_is_always_88_characters(self, password):
        assert len(flask_password_sign(password, salt=FLASK_SALT)) == 88
        assert flask_password_sign(password, salt=FLASK_SALT).decode() == flask_signed(password)

    def test_bcrypt_5_refuses_the_88_characters(self):
        """Why the cut is made in the hasher: libpass with bcrypt 5 raises where passlib cut."""
        with pytest.raises(ValueError, match="72 bytes"):
            passlib.hash.bcrypt.using(rounds=4).hash(flask_signed("correct horse battery"))

    @pytest.mark.parametrize("password", ["correct horse battery", LONG, "pässwörd ünïcode ✓" * 10])
    def test_hashes_of_the_first_72_bytes_verify(self, salt, password):
        encoded = flask_hash_encode(flask_hash(password, "bcrypt"))
        assert check_password(password, encoded)
        assert not check_password(password[:-1], encoded)


class TestHasher:
    def test_must_update_always(self, salt):
        encoded = flask_hash_encode(flask_hash("pw", "sha512_crypt"))
        assert FlaskSecurityPasswordHasher().must_update(encoded)

    def test_safe_summary_masks_the_hash(self, salt):
        hashed = flask_hash("pw", "bcrypt")
        encoded = flask_hash_encode(hashed)
        summary = identify_hasher(encoded).safe_summary(encoded)
        assert summary["algorithm"] == "flask_security"
        assert summary["scheme"] == "bcrypt"
        assert hashed[10:] not in summary["hash"]

    def test_a_lone_surrogate_is_refused_without_an_error(self, salt):
        assert not check_password("pw\ud800", flask_hash_encode(flask_hash("pw", "bcrypt")))

    @pytest.mark.parametrize("unset", [None, ""])
    def test_without_the_salt_nothing_verifies_and_it_is_logged_once(self, salt, caplog, unset):
        salt.FLASK_PASSWORD_SALT = unset
        hashers._log_missing_flask_salt.cache_clear()
        encoded = flask_hash_encode(flask_hash("pw", "bcrypt"))
        with caplog.at_level(logging.ERROR, logger="legacy_flask.hashers"):
            assert not check_password("pw", encoded)
            assert not check_password("pw", encoded)
        messages = [record.getMessage() for record in caplog.records if record.name == "legacy_flask.hashers"]
        assert len(messages) == 1
        assert "FLASK_PASSWORD_SALT is not set" in messages[0]
        assert "SECURITY_PASSWORD_SALT" in messages[0]


# --- Hashes that cannot be checked, or cost too much to ----------------------------------------


@pytest.mark.parametrize("name", list(unusable_hashes()))
def test_a_hash_of_costs_out_of_bounds_or_failing_a_probe_is_refused(salt, name):
    unusable = unusable_hashes()[name]

    assert hashers.flask_hash_refusal(unusable)
    assert flask_hash_encode(unusable) is None


@pytest.mark.parametrize("name", [name for name in unusable_hashes() if name != "bcrypt salt padding"])
def test_a_stored_hash_of_costs_out_of_bounds_is_not_checked(salt, name):
    """One imported before the bounds: refused at once, never run."""
    assert flask_hash_scheme(unusable_hashes()[name]) is None
    assert not check_password("correct horse battery", f"flask_security${unusable_hashes()[name]}")


@pytest.mark.parametrize(
    "scheme, low, default",
    [
        # passlib's and Flask-Security's defaults pass the bounds.
        ("bcrypt", "$04$", "$12$"),
        ("bcrypt", "$04$", "$16$"),
        ("bcrypt_sha256", ",r=4$", ",r=12$"),
        ("pbkdf2_sha512", "$1000$", "$25000$"),
        ("pbkdf2_sha256", "$1000$", "$29000$"),
        ("pbkdf2_sha1", "$1000$", "$131000$"),
        ("sha512_crypt", "rounds=1000$", "rounds=656000$"),
        ("sha256_crypt", "rounds=1000$", "rounds=535000$"),
        ("sha1_crypt", "$1000$", "$480000$"),
        ("scrypt", "ln=4,", "ln=16,"),
        ("argon2", "m=1024,t=1,p=1", "m=65536,t=3,p=4"),
        ("argon2", "m=1024,t=1,p=1", "m=65536,t=10,p=4"),
    ],
)
def test_the_bounds_cover_the_default_costs(scheme, low, default):
    hashed = flask_hash("pw", scheme)
    assert low in hashed
    assert flask_hash_scheme(hashed.replace(low, default, 1)) == scheme


def test_the_hasher_makes_bcrypt_hashes_at_the_configured_cost_for_equal_timing(salt, settings):
    settings.FLASK_PASSWORD_BCRYPT_ROUNDS = 5
    encoded = make_password("a random password", hasher="flask_security")

    assert encoded.startswith("flask_security$$2b$05$")
    assert check_password("a random password", encoded)
    assert not check_password("another password", encoded)
    # No account keeps one: a login rehashes it with the preferred hasher.
    assert FlaskSecurityPasswordHasher().must_update(encoded)

