"""Refuses to serve with DEBUG off when collectstatic has not run: every page with a {% static %} tag
(the admin, /api/docs/, /api/redoc/) would be a 500.

With DEBUG off the static files storage is WhiteNoise's manifest storage (settings.STORAGES), which
needs collectstatic's manifest to name the hashed files. wsgi.py and asgi.py call this once the app is
loaded, so gunicorn's worker fails to boot and gunicorn exits, naming the fix, instead of starting and
answering 500s. Not a system check: `migrate` runs those, and may rightly run before collectstatic.
"""

from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages


def require_static_manifest() -> None:
    storage = storages["staticfiles"]
    if isinstance(storage, ManifestFilesMixin) and not storage.exists(storage.manifest_name):
        raise ImproperlyConfigured(
            f"No static files manifest ({storage.path(storage.manifest_name)}): run "
            "`python manage.py collectstatic --noinput` before starting the server (the Dockerfile "
            "does), or the admin and the API docs pages answer 500."
        )
