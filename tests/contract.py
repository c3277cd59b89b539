"""Moved to tests/support/contract.py. This re-export stays only while tests/test_api_json.py and
tests/test_authentication.py (being changed elsewhere) import it from here; remove it when they move."""

from tests.support.contract import *  # noqa: F401,F403
from tests.support.contract import assert_error  # noqa: F401
