"""What every refusal looks like, checked in one place."""

from http import HTTPStatus

INVALID_TOKEN = 'Bearer error="invalid_token"'
ERROR_KEYS = {"status", "code", "message", "fields"}


def assert_refused(response, status=HTTPStatus.UNAUTHORIZED, body=None, message_starts=""):
    """A refusal in the one error shape, with nothing else in it (no task, no user).

    A 401 names the bearer token as invalid (RFC 6750). `body`, when given, is the whole body.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert set(payload) <= ERROR_KEYS, payload
    assert payload["status"] == status
    assert payload["message"].startswith(message_starts), payload
    if status == HTTPStatus.UNAUTHORIZED:
        assert response["WWW-Authenticate"] == INVALID_TOKEN
        assert payload["code"] == "invalid_token"
    if body is not None:
        assert payload == body


NOT_AUTHENTICATED = {
    "status": 401,
    "code": "not_authenticated",
    "message": "Authentication credentials were not provided.",
}


def assert_asks_for_a_token(response):
    """401 with a bare Bearer challenge: the request came without credentials."""
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == NOT_AUTHENTICATED
