"""The Dockerfile's claims hold, checked without a Docker engine.

The build context (.dockerignore applied) is copied to a temporary /app, its COPY and RUN steps run in
a fresh virtualenv, the release command migrates, and the image's CMD and HEALTHCHECK run as written.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.processes import REPO, Gunicorn, clean_env, free_port
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.live

RELEASE_COMMAND = "python manage.py migrate --noinput"
WORKER_COMMAND = "python manage.py run_worker"
# Steps that change the machine itself, not /app: the test checks what they declare instead.
SYSTEM_STEPS = ("useradd ",)


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, arguments = current.strip().partition(" ")
        instructions.append(
            (keyword.upper(), " ".join(arguments.split()) if keyword.upper() == "RUN" else arguments.strip())
        )
        current = ""
    return instructions


def dockerignored(relative_path, patterns):
    parts = Path(relative_path).parts
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch("/".join(parts[:depth]), pattern) for depth in range(1, len(parts) + 1)):
            return True
    return False


def build_context(destination):
    """The files `docker build .` would send: the repository less .dockerignore's patterns."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(pattern.startswith("!") for pattern in patterns), "exceptions are not modelled here"
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        if path.is_file() and not dockerignored(relative, patterns):
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination / relative)


def wheelhouse():
    """Wheels of requirements.txt, built once per machine and version of the file, so builds are offline."""
    requirements = (REPO / "requirements.txt").read_bytes()
    key = hashlib.sha256(requirements + sys.version.encode()).hexdigest()[:16]
    path = Path.home() / ".cache" / "todo-api-dockerfile-test" / f"wheels-{key}"
    if not path.exists():
        partial = path.with_name(path.name + f".partial-{os.getpid()}")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "-r", REPO / "requirements.txt", "-w", partial],
            check=True,
            capture_output=True,
            timeout=600,
        )
        partial.rename(path)
    return path


class Image:
    """What `docker build` makes of the Dockerfile, reproduced in a temporary folder."""

    def __init__(self, root):
        self.instructions = dockerfile_instructions((REPO / "Dockerfile").read_text())
        self.context = root / "context"
        build_context(self.context)
        venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        self.env = clean_env(
            PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
            VIRTUAL_ENV=str(venv),
            PIP_NO_INDEX="1",
            PIP_FIND_LINKS=str(wheelhouse()),
        )
        self.env.pop("PYTHONHOME", None)
        self.workdir, self.user, self.skipped = root, None, []
        for keyword, arguments in self.instructions:
            getattr(self, f"do_{keyword.lower()}", lambda _: None)(arguments)

    def do_workdir(self, arguments):
        self.workdir = self.workdir / arguments.lstrip("/")
        self.workdir.mkdir(parents=True, exist_ok=True)

    def do_env(self, arguments):
        self.env.update(item.split("=", 1) for item in shlex.split(arguments))

    def do_copy(self, arguments):
        source, destination = arguments.split()
        target = (self.workdir / destination).resolve()
        if source == ".":
            shutil.copytree(self.context, target, dirs_exist_ok=True)
        else:
            shutil.copy2(self.context / source, target)

    def do_run(self, arguments):
        command = " ".join(word for word in arguments.split(" ") if not word.startswith("--mount="))
        if command.startswith(SYSTEM_STEPS):
            self.skipped.append(command)
            return
        # A Dockerfile RUN line is a shell command by definition.
        result = subprocess.run(  # noqa: S602 (RUN lines are shell commands)
            command,
            shell=True,
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"

    def do_user(self, arguments):
        self.user = arguments

    def argv(self, keyword):
        """The exec-form (JSON array) command of CMD or HEALTHCHECK."""
        arguments = dict(self.instructions)[keyword]
        if keyword == "HEALTHCHECK":
            arguments = arguments.split(" CMD ", 1)[1]
        argv = json.loads(arguments)
        return [shutil.which(argv[0], path=self.env["PATH"]), *argv[1:]]

    def run(self, command, **env):
        return subprocess.run(
            shlex.split(command),
            cwd=self.workdir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return Image(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    """The image's CMD with the variables a platform sets, after the release command migrated."""
    port = free_port()
    env = {
        **image.env,
        "DJANGO_SECRET_KEY": "s" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('data') / 'db.sqlite3'}",
        # The image listens on 0.0.0.0:$PORT; tests stay on loopback.
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    migrate = image.run(RELEASE_COMMAND, **env)
    assert migrate.returncode == 0, migrate.stderr
    server = Gunicorn(
        image.argv("CMD"), cwd=image.workdir, env=env, port=port, log_dir=tmp_path_factory.mktemp("logs")
    )
    server.env = env
    yield server
    server.stop()


def test_the_image_is_python_3_11_slim_like_the_interpreter_that_tests_it(image):
    assert dict(image.instructions)["FROM"] == "python:3.11-slim"
    assert sys.version_info[:2] == (3, 11)


def test_dependencies_install_in_their_own_layer_before_the_code_is_copied(image):
    steps = [(keyword, arguments) for keyword, arguments in image.instructions if keyword in ("COPY", "RUN")]
    assert steps[0] == ("COPY", "requirements.txt .")
    assert steps[1][0] == "RUN" and "pip install -r requirements.txt" in steps[1][1]
    assert steps[2] == ("COPY", ". .")


def test_the_build_context_leaves_out_local_state_secrets_and_tests(image):
    for path in [".git", ".venv", ".env", "db.sqlite3", "tests", "e2e", "bench"]:
        assert not (image.context / path).exists(), path
    assert (image.context / "manage.py").exists()


def test_collectstatic_runs_at_build_with_hashed_compressed_files(image):
    manifest = json.loads((image.workdir / "staticfiles" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert re.fullmatch(r"admin/css/base\.[0-9a-f]{12}\.css", hashed)
    assert (image.workdir / "staticfiles" / (hashed + ".gz")).exists()


def test_it_runs_as_a_user_it_creates_not_as_root(image):
    assert image.user not in (None, "root", "0")
    assert any(re.search(rf"\buseradd\b.* {image.user}$", step) for step in image.skipped), image.skipped


def test_the_cmd_is_gunicorn_in_exec_form_with_the_repositorys_config_and_no_migrations(image):
    argv = json.loads(dict(image.instructions)["CMD"])
    assert argv == ["gunicorn", "-c", "gunicorn.conf.py", "todo_api.wsgi"]
    assert (image.workdir / "gunicorn.conf.py").exists()
    assert (image.workdir / "todo_api" / "wsgi.py").exists()
    assert "ENTRYPOINT" not in dict(image.instructions)
    assert not any("migrate" in arguments for keyword, arguments in image.instructions if keyword == "RUN")


def test_the_release_command_is_documented(image):
    assert RELEASE_COMMAND in (REPO / "Dockerfile").read_text()
    assert RELEASE_COMMAND in (REPO / "README.md").read_text()


def test_the_healthcheck_command_passes_against_the_running_container(image, container):
    assert "/healthz" in dict(image.instructions)["HEALTHCHECK"]
    result = subprocess.run(image.argv("HEALTHCHECK"), env=container.env, capture_output=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_the_container_serves_the_api(container):
    assert container.get("/healthz").json() == {"status": "ok"}
    assert container.get("/readyz").json() == {"status": "ready"}
    assert container.get("/api/v1/tasks").status == 401


def test_whitenoise_serves_admin_css_by_hashed_name_compressed_and_cacheable_forever(container):
    login = container.get("/admin/login/")
    assert login.status == 200
    css = re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css", login.body.decode()).group()

    response = container.get(css, **{"Accept-Encoding": "gzip"})

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]


@pytest.mark.parametrize(
    ("page", "asset"),
    [
        (
            "/api/docs/",
            r"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle\.[0-9a-f]{12}\.js",
        ),
        ("/api/redoc/", r"/static/drf_spectacular_sidecar/redoc/bundles/redoc\.standalone\.[0-9a-f]{12}\.js"),
    ],
)
def test_swagger_ui_and_redoc_load_their_assets_from_the_container(container, page, asset):
    html = container.get(page)
    assert html.status == 200
    path = re.search(asset, html.body.decode()).group()
    assert container.get(path).status == 200


def test_the_worker_command_is_documented():
    assert WORKER_COMMAND in (REPO / "Dockerfile").read_text()
    assert WORKER_COMMAND in (REPO / "README.md").read_text()


def test_the_image_runs_the_worker_which_logs_json_and_stops_on_sigterm(image, container, tmp_path):
    python, *arguments = shlex.split(WORKER_COMMAND)
    argv = [shutil.which(python, path=image.env["PATH"]), *arguments]
    worker = ServerProcess("worker", argv, cwd=image.workdir, env=container.env, log_dir=tmp_path)
    try:
        worker.wait_for_log("worker started")
    finally:
        status = worker.stop()

    assert status == 0
    lines = [json.loads(line) for line in worker.log().splitlines()]
    started, *_, stopped = [line for line in lines if line["logger"] == "tasks.worker"]
    assert (started["poll_seconds"], started["database"]) == (1.0, "sqlite")
    assert stopped["message"] == "worker stopped"


def test_sigterm_stops_gunicorn_gracefully(container):
    assert container.stop() == 0
    assert "Shutting down: Master" in container.log()
