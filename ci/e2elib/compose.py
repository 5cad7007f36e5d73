"""The stack under test: one compose project of its own, driven through the docker CLI.

Everything here is keyed by the compose project name, so the check never touches a stack a user
left running on the same engine: its own containers, network, volumes and host ports.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .timing import PhaseFailure

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# Projects of the end-to-end check are named taxi-e2e-<pid>-<random>; see stale_projects().
E2E_PREFIX = "taxi-e2e-"
# Label that docker-compose.yml puts on every run container of a stack (DAGSTER_CONTAINER_CONTEXT).
STACK_LABEL = "taxi-platform.stack"

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def compose_variables(compose_text: str) -> set[str]:
    """Names of the variables a compose file interpolates (`${NAME...}`)."""
    return set(_VARIABLE.findall(compose_text))


def sanitized_environ(environ: dict[str, str], variables: set[str]) -> dict[str, str]:
    """The caller's environment without any variable the compose file reads.

    Compose prefers the shell's environment over --env-file: a TAXI_DATA_SOURCE exported in the
    developer's shell would otherwise leak into the throwaway stack.
    """
    return {
        key: value
        for key, value in environ.items()
        if key not in variables and not key.startswith("COMPOSE_")
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def new_project_name(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{E2E_PREFIX}{pid}-{os.urandom(3).hex()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_projects(projects: list[dict], alive=pid_alive) -> list[str]:
    """End-to-end projects (from `docker compose ls -a --format json`) whose process is gone."""
    stale = []
    for project in projects:
        name = project.get("Name", "")
        match = re.fullmatch(re.escape(E2E_PREFIX) + r"(\d+)-[0-9a-f]+", name)
        if match and not alive(int(match.group(1))):
            stale.append(name)
    return stale


def parse_json_lines(text: str) -> list[dict]:
    """`docker ... --format json` prints either one JSON array or one object per line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str  # created, running, restarting, exited, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    exit_code: int = 0

    @property
    def ready(self) -> bool:
        """Up and healthy, or a one-shot service (e.g. a database init) that exited cleanly."""
        if self.state == "exited":
            return self.exit_code == 0
        return self.state == "running" and self.health in ("healthy", "")

    @property
    def failed(self) -> bool:
        return self.health == "unhealthy" or (self.state == "exited" and self.exit_code != 0)


def service_statuses(ps_entries: list[dict]) -> dict[str, ServiceStatus]:
    return {
        entry["Service"]: ServiceStatus(
            service=entry["Service"],
            state=entry.get("State", ""),
            health=entry.get("Health", "") or "",
            exit_code=int(entry.get("ExitCode", 0) or 0),
        )
        for entry in ps_entries
    }


def docker(
    *args: str, timeout: float | None = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, env=env
    )


@dataclass
class Stack:
    project: str
    env_file: Path
    files: tuple[Path, ...] = (COMPOSE_FILE,)
    environ: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, project: str, env_file: Path, files: tuple[Path, ...] = (COMPOSE_FILE,)):
        variables = set()
        for path in files:
            variables |= compose_variables(path.read_text())
        return cls(project, env_file, files, sanitized_environ(dict(os.environ), variables))

    def command(self, *args: str) -> list[str]:
        cmd = [
            "docker",
            "compose",
            "--project-name",
            self.project,
            "--env-file",
            str(self.env_file),
            "--project-directory",
            str(REPO_ROOT),
        ]
        for path in self.files:
            cmd += ["--file", str(path)]
        return cmd + list(args)

    def compose(self, *args: str, timeout: float | None = 300, check: bool = True):
        result = subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.environ
        )
        if check and result.returncode != 0:
            raise PhaseFailure(
                f"docker compose {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def volume(self, name: str) -> str:
        """Name of one of the stack's volumes (docker-compose.yml names them <project>_<name>)."""
        return f"{self.project}_{name}"

    def services(self) -> list[str]:
        return self.compose("config", "--services", timeout=60).stdout.split()

    def statuses(self) -> dict[str, ServiceStatus]:
        out = self.compose("ps", "--all", "--format", "json", timeout=60).stdout
        return service_statuses(parse_json_lines(out))

    def up_and_wait(self, timeout: float, poll: float = 1.0) -> dict[str, float]:
        """`up -d` and wait until every service is healthy; seconds until each one was."""
        start = time.monotonic()
        expected = self.services()
        proc = subprocess.Popen(
            self.command("up", "--detach", "--no-build", "--pull", "missing"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.environ,
        )
        ready_after: dict[str, float] = {}
        try:
            while True:
                elapsed = time.monotonic() - start
                statuses = self.statuses()
                for name, status in statuses.items():
                    if status.ready and name not in ready_after:
                        ready_after[name] = elapsed
                        print(f"  {name} healthy after {elapsed:.1f}s", flush=True)
                failed = [name for name, status in statuses.items() if status.failed]
                if failed:
                    raise PhaseFailure(f"service(s) failed to start: {', '.join(failed)}", failed)
                up_done = proc.poll() is not None
                if up_done and proc.returncode != 0:
                    out = proc.stdout.read() if proc.stdout else ""
                    raise PhaseFailure(
                        f"docker compose up failed ({proc.returncode}):\n{out}",
                        [n for n in expected if n not in ready_after],
                    )
                if up_done and all(name in ready_after for name in expected):
                    return ready_after
                if elapsed > timeout:
                    waiting = [name for name in expected if name not in ready_after]
                    raise PhaseFailure(
                        f"not healthy after {timeout:.0f}s: {', '.join(waiting)}", waiting
                    )
                time.sleep(poll)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)

    def logs(self, services: tuple[str, ...] | list[str] = (), tail: int = 200) -> str:
        result = self.compose(
            "logs",
            "--no-color",
            "--timestamps",
            "--tail",
            str(tail),
            *services,
            timeout=120,
            check=False,
        )
        return result.stdout + result.stderr

    def run_containers(self) -> list[str]:
        """Ids of the run containers of this stack still present (running or not)."""
        out = docker(
            "ps",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            f"label={STACK_LABEL}={self.project}",
        ).stdout
        return out.split()

    def down(self) -> None:
        """Remove everything the stack created: run containers first (they hold the network)."""
        ids = self.run_containers()
        if ids:
            docker("rm", "--force", *ids, check=False)
        self.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300, check=False
        )


def remove_stale_projects() -> list[str]:
    """Take down end-to-end stacks whose check died without cleaning up (e.g. a CI timeout)."""
    result = docker("compose", "ls", "--all", "--format", "json", check=False)
    if result.returncode != 0:
        return []
    removed = []
    for name in stale_projects(parse_json_lines(result.stdout)):
        ids = docker("ps", "-aq", "--filter", f"label={STACK_LABEL}={name}", check=False).stdout
        if ids.split():
            docker("rm", "--force", *ids.split(), check=False)
        docker(
            "compose",
            "--project-name",
            name,
            "down",
            "--volumes",
            "--remove-orphans",
            "--timeout",
            "10",
            timeout=300,
            check=False,
        )
        removed.append(name)
    return removed


class EventRecorder:
    """Records the engine's container events of one stack's run containers (`docker events`)."""

    def __init__(self, project: str, path: Path):
        self.project = project
        self.path = path
        self._proc: subprocess.Popen | None = None
        self._file = None

    def start(self) -> None:
        self._file = open(self.path, "w")
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
                "--filter",
                f"label={STACK_LABEL}={self.project}",
            ],
            stdout=self._file,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        if self._file:
            self._file.close()
            self._file = None

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        return parse_json_lines(self.path.read_text())


@dataclass
class ContainerLife:
    container_id: str
    run_id: str
    job: str
    actions: list[str] = field(default_factory=list)


def container_lifecycles(events: list[dict]) -> dict[str, ContainerLife]:
    """Per run container: its run id, job and the lifecycle actions the engine reported."""
    lives: dict[str, ContainerLife] = {}
    for event in events:
        actor = event.get("Actor", {})
        attributes = actor.get("Attributes", {})
        container_id = actor.get("ID") or event.get("id")
        run_id = attributes.get("dagster/run_id")
        if not container_id or not run_id:
            continue
        life = lives.setdefault(
            container_id,
            ContainerLife(container_id, run_id, attributes.get("dagster/job_name", "")),
        )
        life.actions.append(event.get("Action") or event.get("status", ""))
    return lives
