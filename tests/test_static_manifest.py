"""With DEBUG off and no collectstatic manifest, the server refuses to start and names collectstatic,
instead of serving the admin and the API docs pages as 500s (todo_api/static_manifest.py)."""

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.environment import REPO, clean_env
from tests.support.servers import gunicorn_argv
from todo_api.static_manifest import require_static_manifest

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_without_a_manifest_the_check_names_collectstatic(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = PRODUCTION_STORAGES

    with pytest.raises(ImproperlyConfigured, match=r"run `python manage.py collectstatic --noinput`"):
        require_static_manifest()


def test_with_a_manifest_the_check_passes(settings, tmp_path):
    (tmp_path / "staticfiles.json").write_text(json.dumps({"paths": {}, "version": "1.1"}))
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = PRODUCTION_STORAGES

    require_static_manifest()


def test_storage_without_a_manifest_needs_none(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path  # DEBUG's plain storage, as the suite runs

    require_static_manifest()


@pytest.mark.live
def test_gunicorn_refuses_to_start_without_collectstatic(tmp_path):
    env = clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="localhost",
        DJANGO_STATIC_ROOT=str(tmp_path / "never-collected"),
    )

    result = subprocess.run(
        gunicorn_argv("--bind", "127.0.0.1:0", "--workers", "1"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode != 0
    assert "run `python manage.py collectstatic --noinput` before starting the server" in result.stderr
    assert "Worker failed to boot" in result.stderr


@pytest.mark.live
def test_a_bare_import_of_the_wsgi_app_refuses_too(tmp_path):
    env = clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="localhost",
        DJANGO_STATIC_ROOT=str(tmp_path),
    )

    result = subprocess.run(
        [sys.executable, "-c", "import todo_api.wsgi"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured: No static files manifest" in result.stderr
