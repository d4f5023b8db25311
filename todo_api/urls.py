from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from tasks.urls import user_urls, v1_urls
from todo_api.errors import page_not_found
from todo_api.health import healthz, readyz
from todo_api.schema_view import SchemaView

urlpatterns = [
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^readyz/?$", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # Generated once per process, not per request (todo_api/schema_view.py).
    re_path(r"^api/schema/?$", SchemaView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Before the compatibility routes, whose {user_id} would otherwise match "v1".
    path("api/v1/", include("authbridge.urls")),
    path("api/v1/", include(v1_urls)),
    path("api/", include(user_urls)),
    # With DEBUG on, Django answers unknown paths with its HTML debug page, not handler404.
    # CSRF-exempt like the API's own views, or a PUT here would get the HTML CSRF failure page.
    re_path(r"^api/", csrf_exempt(page_not_found), name="api-not-found"),
]

handler400 = "todo_api.errors.bad_request"
handler403 = "todo_api.errors.permission_denied"
handler404 = "todo_api.errors.page_not_found"
handler500 = "todo_api.errors.server_error"
