"""core.vault's sealing: a value only the holder of a secret the server does not keep reads back."""

import pytest

from core import vault


def test_a_sealed_value_opens_with_its_secret_only():
    sealed = vault.seal(b"the answer", secret="parent-token")

    assert vault.unseal(sealed, secret="parent-token") == b"the answer"
    assert b"the answer" not in sealed.encode()
    with pytest.raises(vault.SecretUnreadable):
        vault.unseal(sealed, secret="another-token")
    with pytest.raises(vault.SecretUnreadable):
        vault.decrypt(sealed)  # SECRET_KEY alone does not open it


def test_a_sealed_value_depends_on_secret_key_too(settings):
    sealed = vault.seal(b"the answer", secret="parent-token")

    settings.SECRET_KEY = "another " + settings.SECRET_KEY

    with pytest.raises(vault.SecretUnreadable):
        vault.unseal(sealed, secret="parent-token")


def test_unseal_refuses_what_is_not_a_sealed_value():
    with pytest.raises(vault.SecretUnreadable):
        vault.unseal("not a fernet token ü", secret="parent-token")
