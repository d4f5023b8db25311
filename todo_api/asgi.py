"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "todo_api.settings")

application = get_asgi_application()

from todo_api.static_manifest import require_static_manifest  # noqa: E402 (needs the settings loaded above)

require_static_manifest()
