"""Django's session, user and message middleware and axes' lockout, skipped on the API (stateless JWT).

Only the pages people sign in to (the admin) read `request.session`, Django's `request.user` or
messages; under /api/ DRF authenticates the bearer token itself. Skipping them there saves a session
store, a lazy user and a signed-cookie message store on every API request (docs/performance.md).
They stay subclasses of Django's own, so the admin's system checks still find them. The trade: an
API view can never fall back on the admin's session (DRF's SessionAuthentication would find no user),
which is the rule anyway: a cookie the browser sends by itself must not authenticate the API. So a
view under /api/ reads the caller from DRF's `request.user`, never from a plain Django view's.
"""

from collections.abc import Awaitable

from axes import middleware as axes
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

# Where the API is routed (todo_api/urls.py); CORS_URLS_REGEX in settings names the same prefix.
API_PATH_PREFIX = "/api/"


class SkippedOnAPIMixin(MiddlewareMixin):
    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(SkippedOnAPIMixin, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(SkippedOnAPIMixin, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(SkippedOnAPIMixin, messages.MessageMiddleware):
    pass


class AxesMiddleware(axes.AxesMiddleware):
    """Staff sign-in lockout's answer (todo_api/admin_login.py); the API never signs in with a password."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        return super().__call__(request)
