"""Server processes for tests and the benchmark: gunicorn as the image runs it, Node for Better Auth."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

T = TypeVar("T")


class ServerProcess:
    """A child process in its own session (it and its children, nothing else), output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, cwd: Path, env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open while the server runs, closed in stop())
        self.process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first match of `pattern` in the output, once it is printed."""
        regex = re.compile(pattern)
        return self.wait_until(lambda: regex.search(self.log()), f"print {pattern!r}", timeout)

    def wait_until(self, ready: Callable[[], T], what: str, timeout: float = START_TIMEOUT) -> T:
        """`ready()`'s first true value; a RuntimeError with the log if the process exits or time runs out.

        `ready` may raise OSError while the server is not listening yet.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                outcome = ready()
            except OSError:
                outcome = None
            if outcome:
                return outcome
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not {what} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM to the process, as `docker stop` sends it (gunicorn's arbiter then stops its workers
        gracefully); SIGKILL to the whole session if it is not gone in time. The exit status."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        self._log.close()
        return self.process.returncode


def gunicorn_argv(
    *options: str, config: Path | None = REPO / "gunicorn.conf.py", wsgi: str = "todo_api.wsgi"
) -> list[str]:
    """`python -m gunicorn` with our gunicorn.conf.py (as the image's CMD), these options, the WSGI app.

    No control socket: servers started side by side (and a developer's) would share its path.
    """
    conf = ["-c", str(config)] if config is not None else []
    return [sys.executable, "-m", "gunicorn", *conf, *options, "--no-control-socket", wsgi]


def listening_port(server: ServerProcess) -> int:
    """The port a gunicorn bound to 127.0.0.1:0 chose, from its start-up line."""
    return int(server.wait_for_log(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))
