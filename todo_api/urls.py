from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from tasks.urls import user_urls, v1_urls
from todo_api.health import healthz, readyz

urlpatterns = [
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^readyz/?$", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/redoc/?$", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Before the compatibility routes, whose {user_id} would otherwise match "v1".
    path("api/v1/", include(v1_urls)),
    path("api/", include(user_urls)),
]

handler400 = "todo_api.errors.bad_request"
handler403 = "todo_api.errors.permission_denied"
handler404 = "todo_api.errors.page_not_found"
handler500 = "todo_api.errors.server_error"
