"""The envelopes expected by ../shared/CONTRACT.md, and the paths they are expected on.

Written out here and not imported from the app (accounts/errors.py), so that a wrong message or
status in the app fails the tests instead of moving the expectation with it. One constant per row
of the contract's "Messages" table, named after the row.
"""

# Paths. `_PATH`, not `_URL`: the settings CONFIRMATION_URL and RECOVER_URL name the frontend's
# pages that the emailed links open, not these endpoints.
AUTHENTICATE_PATH = "/api/authenticate"
USER_PATH = "/api/user"
CONFIRMATION_PATH = "/api/validate/confirmation"
RECOVERY_PATH = "/api/validate/recovery"

# Error envelopes, in the order of the contract's table.
INVALID_CREDENTIALS = {"status": 401, "message": "Invalid email or password"}
USER_CONFIRMATION_REQUIRED = {"status": 400, "message": "Please confirm your account"}
PASSWORD_CONFIRMATION_INVALID = {"status": 401, "message": "Passwords do not match"}
USER_ALREADY_EXIST = {"status": 401, "message": "A user with that email already exists"}
INVALID_PASSWORD = {"status": 401, "message": "Password is incorrect"}
ACCOUNT_NOT_ACTIVE = {"status": 401, "message": "Account is deactivated login to reactivate"}
NO_UPDATES_TO_MAKE = {"status": 401, "message": "No updates to make"}
COULD_NOT_SEND_EMAIL = {"status": 500, "message": "Server could not process email request"}
INVALID_TOKEN = {"status": 400, "message": "Invalid validation token"}
USER_ALREADY_CONFIRMED = {"status": 401, "message": "Account already confirmed"}
LOGIN_REQUIRED = {"status": 401, "message": "Login required"}
TOKEN_INVALID = {"status": 401, "message": "Invalid or expired token"}
ACCOUNT_DISABLED = {"status": 403, "message": "Account disabled"}
THROTTLED = {"status": 429, "message": "Too many requests"}


def assert_error(response, expected: dict) -> None:
    """Assert a contract error: the exact envelope, with no other key, and a JSON body."""
    assert response["Content-Type"] == "application/json"
    assert response.status_code == expected["status"]
    assert response.json() == expected
