"""core/api.py: what every answer of the API shares (no caching of any answer)."""

from rest_framework.test import APIClient

from tests.support.api import client_with, login


# What each answer below is: the checks are about its headers, but each is the answer it should be.
STATUSES = {
    "login": 200,
    "refresh": 200,
    "user": 200,
    "sessions": 200,
    "refused token": 401,
    "bad login": 401,
    "bad confirmation link": 400,
    "unknown path": 404,
    "body too large": 413,
}


def test_no_answer_of_the_api_may_be_cached(user, token_for):
    # A token, a user's details or an error about them must not stay in a browser's or a
    # proxy's cache (RFC 6749, 5.1: token answers are no-store): every API answer says so.
    token = token_for(user)
    answers = {
        "login": login(APIClient()),
        "refresh": client_with(token).get("/api/authenticate"),
        "user": client_with(token).get("/api/user"),
        "sessions": client_with(token).get("/api/sessions"),
        "refused token": client_with("not a token").get("/api/user"),
        "bad login": login(APIClient(), password="wrong password"),
        "bad confirmation link": APIClient().post("/api/validate/confirmation", {"token": "nope"}, format="json"),
        # Answered outside the API's views: Django's 404 and the body-size limit.
        "unknown path": client_with(token).get("/api/nope"),
        "body too large": APIClient().post("/api/authenticate", "x" * 70_000, content_type="application/json"),
    }

    for name, response in answers.items():
        assert response.status_code == STATUSES[name], name
        assert response["Cache-Control"] == "no-store", name
    assert answers["login"].status_code == 200 and "token" in answers["login"].json()
    assert answers["refresh"].status_code == 200 and "token" in answers["refresh"].json()
