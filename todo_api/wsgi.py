"""WSGI entry point: `gunicorn todo_api.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_api.settings")

application = get_wsgi_application()

from todo_api.static_manifest import require_static_manifest  # noqa: E402 (as below)
from todo_api.throttling import warn_if_per_process  # noqa: E402 (needs the settings loaded above)

require_static_manifest()
warn_if_per_process()
