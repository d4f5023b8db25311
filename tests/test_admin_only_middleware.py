"""Sessions, Django's user and messages are set up for the admin's pages and skipped on the API."""

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import URLResolver, get_resolver
from django.utils.module_loading import import_string
from rest_framework.views import APIView

ADMIN_ONLY = [
    "todo_api.admin_only.SessionMiddleware",
    "todo_api.admin_only.AuthenticationMiddleware",
    "todo_api.admin_only.MessageMiddleware",
]


def through_admin_only(request):
    """The attributes the three middleware left on the request that reached the view, and the response."""
    seen = {}

    def view(request):
        seen.update(vars(request))
        return HttpResponse()

    handler = view
    for middleware_path in reversed(ADMIN_ONLY):
        handler = import_string(middleware_path)(handler)
    return seen, handler(request)


def test_they_stand_in_settings_in_place_of_djangos_own():
    for path in ADMIN_ONLY:
        assert path in settings.MIDDLEWARE
    djangos_own = [path for path in settings.MIDDLEWARE if path.startswith("django.")]
    for name in ("SessionMiddleware", "AuthenticationMiddleware", "MessageMiddleware"):
        assert not [path for path in djangos_own if path.endswith(name)]


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/5", "/api/alice/tasks", "/api/docs"])
def test_the_api_gets_no_session_user_or_messages(db, path):
    request = RequestFactory().get(path, HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}=abc")

    seen, response = through_admin_only(request)

    assert "session" not in seen
    assert "user" not in seen
    assert "_messages" not in seen
    assert not response.has_header("Vary")


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/", "/apis"])
def test_every_other_page_gets_them(db, path):
    seen, _ = through_admin_only(RequestFactory().get(path))

    assert "session" in seen
    assert "user" in seen
    assert "_messages" in seen


def routes(resolver=None, prefix=""):
    """(route, view, name) of every URL pattern, includes walked."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from routes(pattern, route)
        else:
            yield route, pattern.callback, pattern.name


def test_every_api_route_is_a_drf_view_which_reads_the_caller_from_the_token():
    api_routes = [(route, view, name) for route, view, name in routes() if route.startswith("api")]

    assert len(api_routes) > 10
    for route, view, name in api_routes:
        if name == "api-not-found":  # the JSON 404, which reads nothing of the caller
            continue
        assert issubclass(getattr(view, "cls", type(None)), APIView), route
