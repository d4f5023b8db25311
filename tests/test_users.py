"""Just-in-time local users: created from the token, kept current, identified by `sub` alone."""

import threading
from http import HTTPStatus

import pytest
from django.db import connection

from authbridge.models import User
from tests.conftest import client_with

ME = "/api/v1/me"


def test_the_first_request_creates_the_local_user(db, token_for):
    response = client_with(token_for("new-sub", email="nia@example.com", name="Nia")).get(ME)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": "new-sub", "email": "nia@example.com", "name": "Nia"}
    user = User.objects.get(sub="new-sub")
    assert (user.email, user.name, user.has_usable_password(), user.is_staff) == (
        "nia@example.com",
        "Nia",
        False,
        False,
    )


def test_email_and_name_follow_the_token(db, token_for):
    client_with(token_for("sub-1", email="old@example.com", name="Old")).get(ME)
    response = client_with(token_for("sub-1", email="new@example.com", name="New")).get(ME)
    assert response.json() == {"id": "sub-1", "email": "new@example.com", "name": "New"}
    assert User.objects.filter(sub="sub-1").count() == 1


@pytest.mark.parametrize(
    ("claims", "verified"),
    [
        ({"emailVerified": True}, True),
        ({"emailVerified": False}, False),
        ({"emailVerified": "true"}, False),
        ({"emailVerified": ..., "email_verified": True}, True),  # ...: the claim left out
        ({"emailVerified": ...}, False),
    ],
)
def test_email_verified_is_taken_from_the_token_only_when_it_is_true(db, token_for, claims, verified):
    client_with(token_for("sub-v", email="v@example.com", **claims)).get(ME)

    assert User.objects.get(sub="sub-v").email_verified is verified


def test_email_verified_follows_the_token(db, token_for):
    client_with(token_for("sub-v", emailVerified=False)).get(ME)
    client_with(token_for("sub-v", emailVerified=True)).get(ME)
    assert User.objects.get(sub="sub-v").email_verified is True

    client_with(token_for("sub-v", email="other@example.com", emailVerified=False)).get(ME)
    assert User.objects.get(sub="sub-v").email_verified is False


def test_identity_is_the_sub_never_the_email(db, token_for):
    client_with(token_for("sub-a", email="same@example.com")).get(ME)
    client_with(token_for("sub-b", email="same@example.com")).get(ME)
    assert sorted(User.objects.values_list("sub", flat=True)) == ["sub-a", "sub-b"]


def test_claims_the_database_would_refuse_are_cleaned(db, token_for):
    response = client_with(token_for("sub-x", email=42, name="Nul\x00" + "n" * 300)).get(ME)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"id": "sub-x", "email": "", "name": "Nul" + "n" * 252}


def test_a_disabled_account_is_refused(db, token_for):
    User.objects.create(sub="gone", username="gone", is_active=False)
    response = client_with(token_for("gone")).get(ME)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "status": 403,
        "code": "permission_denied",
        "message": "This account is disabled.",
    }


def test_a_sub_equal_to_a_staff_username_is_refused_and_not_merged(db, token_for):
    staff = User.objects.create_superuser(username="admin", email="ops@example.com", password="x" * 20)
    response = client_with(token_for("admin")).get(ME)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "This account conflicts with a local account."
    staff.refresh_from_db()
    assert staff.sub is None


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_requests_all_succeed_and_create_one_user(token_for):
    token = token_for("racer")
    barrier = threading.Barrier(8)
    statuses = []

    def first_request():
        barrier.wait()
        statuses.append(client_with(token).get(ME).status_code)
        connection.close()

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [HTTPStatus.OK] * 8
    assert User.objects.filter(sub="racer").count() == 1
