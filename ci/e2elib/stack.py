"""The stack under test: one compose project of its own, driven through the docker CLI.

Everything is keyed by the compose project name, so the check never touches a stack a user left
running on the same engine: its own containers, network, volumes and host ports.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# Projects of the end-to-end check are named taxi-e2e-<pid>-<random>; see stale_projects().
E2E_PREFIX = "taxi-e2e-"
# Label that docker-compose.yml puts on every run container of a stack (DAGSTER_CONTAINER_CONTEXT).
STACK_LABEL = "taxi-platform.stack"
T = TypeVar("T")


class PhaseFailure(Exception):
    """A phase failed. `services` names the compose services whose logs explain it."""

    def __init__(self, message: str, services: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.services = tuple(services)


def fail_if(problems: list[str], what: str, services=()) -> None:
    if problems:
        raise PhaseFailure(f"{what}:\n  " + "\n  ".join(problems[:30]), services)


def wait_until(
    probe: Callable[[], T], timeout: float, what: str, services=(), poll: float = 5.0
) -> T:
    """probe() until it returns something truthy; PhaseFailure naming `what` after `timeout`.

    For what no library waits on: a backfill's end, the daemon filling a range, a run's status."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise PhaseFailure(f"{what}: not done after {timeout:.0f}s", services)
        time.sleep(poll)
    return result


def compose_variables(compose_text: str) -> set[str]:
    """Names of the variables a compose file interpolates (`${NAME...}`)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_text))


def sanitized_environ(environ: dict[str, str], variables: set[str]) -> dict[str, str]:
    """The caller's environment without any variable the compose file reads.

    Compose prefers the shell's environment over --env-file: a TAXI_DATA_SOURCE exported in the
    developer's shell would otherwise leak into the throwaway stack.
    """
    return {k: v for k, v in environ.items() if k not in variables and not k.startswith("COMPOSE_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_project_name(pid: int | None = None) -> str:
    return f"{E2E_PREFIX}{pid or os.getpid()}-{os.urandom(3).hex()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def stale_projects(projects: list[dict], alive=pid_alive) -> list[str]:
    """End-to-end projects (from `docker compose ls -a --format json`) whose process is gone."""
    pattern = re.escape(E2E_PREFIX) + r"(\d+)-[0-9a-f]+"
    matches = (re.fullmatch(pattern, project.get("Name", "")) for project in projects)
    return [m.group(0) for m in matches if m and not alive(int(m.group(1)))]


def docker(*args: str, timeout: float | None = 120, check: bool = True, env=None):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, env=env
    )


def run_containers(project: str) -> list[str]:
    """Ids of the run containers of a stack still present (running or not)."""
    label = f"label={STACK_LABEL}={project}"
    return docker("ps", "-aq", "--no-trunc", "--filter", label, check=False).stdout.split()


class Stack:
    def __init__(
        self,
        project: str,
        env_file: Path,
        environ: dict[str, str] | None = None,
        extra_files: tuple[Path, ...] = (),
    ):
        self.project, self.env_file, self.extra_files = project, env_file, extra_files
        self.environ = environ if environ is not None else dict(os.environ)

    @classmethod
    def create(cls, project: str, env_file: Path, extra_files: tuple[Path, ...] = ()) -> Stack:
        """`extra_files`: compose files layered on docker-compose.yml (e.g. ci/e2e-alerts.yml)."""
        files = (COMPOSE_FILE, *extra_files)
        variables = set().union(*(compose_variables(f.read_text()) for f in files))
        return cls(project, env_file, sanitized_environ(dict(os.environ), variables), extra_files)

    def command(self) -> list[str]:
        files = [f"-f={path}" for path in (COMPOSE_FILE, *self.extra_files)]
        return ["compose", "-p", self.project, f"--env-file={self.env_file}", *files]

    def compose(self, *args: str, timeout: float | None = 300, check: bool = True):
        """`docker compose` on this project; PhaseFailure with its output when it fails."""
        result = docker(*self.command(), *args, timeout=timeout, check=False, env=self.environ)
        if check and result.returncode != 0:
            raise PhaseFailure(
                f"docker compose {' '.join(args[:6])} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-4000:]}"
            )
        return result

    def up(self, timeout: float) -> None:
        """Start every service and wait until each is healthy (one-shot ones: exited 0)."""
        wait = ["--wait", "--wait-timeout", str(int(timeout))]
        result = self.compose("up", "-d", "--no-build", *wait, timeout=timeout + 60, check=False)
        if result.returncode != 0:
            raise PhaseFailure(
                f"docker compose up --wait failed ({result.returncode}): the stack did not become "
                f"healthy within {timeout:.0f}s:\n{result.stderr[-4000:]}"
            )

    def service_container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def logs(self, services=(), tail: int = 200) -> str:
        result = self.compose(
            "logs", "--no-color", "--timestamps", "--tail", str(tail), *services, check=False
        )
        return result.stdout + result.stderr

    def down(self) -> None:
        remove_project(self.project, self.command())


def remove_project(project: str, compose: list[str]) -> None:
    """Run containers first: `compose down` leaves them (DockerRunLauncher started them) and they
    hold the network."""
    if ids := run_containers(project):
        docker("rm", "--force", *ids, check=False)
    down = ["down", "--volumes", "--remove-orphans", "--timeout", "20"]
    docker(*compose, *down, timeout=300, check=False)


def remove_stale_projects() -> list[str]:
    """Take down end-to-end stacks whose check died without cleaning up (e.g. a CI timeout); by
    project name alone, since their env files are gone."""
    result = docker("compose", "ls", "--all", "--format", "json", check=False)
    stale = stale_projects(json.loads(result.stdout or "[]")) if result.returncode == 0 else []
    for name in stale:
        remove_project(name, ["compose", "-p", name])
    return stale


class EventRecorder:
    """Records the engine's container events of one stack's run containers (`docker events`)."""

    def __init__(self, project: str, path: Path):
        self.project, self.path, self._proc = project, path, None

    def start(self) -> None:
        filters = ["--filter=type=container", f"--filter=label={STACK_LABEL}={self.project}"]
        command = ["docker", "events", "--format={{json .}}", *filters]
        with open(self.path, "w") as out:
            self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def events(self) -> list[dict]:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        return [json.loads(line) for line in lines if line.strip()]


def container_lifecycles(events: list[dict]) -> dict[str, dict]:
    """Per run container: its run id ("run_id") and the lifecycle actions the engine reported."""
    lives: dict[str, dict] = {}
    for event in events:
        actor = event.get("Actor", {})
        run_id = actor.get("Attributes", {}).get("dagster/run_id")
        if actor.get("ID") and run_id:
            life = lives.setdefault(actor["ID"], {"run_id": run_id, "actions": []})
            life["actions"].append(event.get("Action"))
    return lives
