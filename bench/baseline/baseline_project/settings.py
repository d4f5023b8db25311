"""The bare-Django baseline for bench/run.py: no apps, no database use, one view.

It is started under the same gunicorn configuration as the API, so the
difference between the two is what the API adds on top of Django + gunicorn.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "baseline-only-not-secret"
DEBUG = os.environ.get("DJANGO_DEBUG", "0").lower() in ("1", "true", "yes", "on")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()
]

INSTALLED_APPS = []
# CommonMiddleware is kept only because it sets Content-Length (as in the API).
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
APPEND_SLASH = False
ROOT_URLCONF = "baseline_project.urls"
WSGI_APPLICATION = "baseline_project.wsgi.application"
DATABASES = {}
USE_TZ = True
USE_I18N = False
