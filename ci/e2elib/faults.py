"""The faults an operator meets, as the end-to-end check causes them: a PostgreSQL restart under a
running stack, and `docker compose down` with a run in flight. The checks of what must hold after
each (every API call answers the first time; nothing of the stack is left on the engine; what is
kept is unchanged) are here, the phases that string them together in ci/e2e.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from . import stack as stack_module
from .stack import Stack, docker, wait_until


def health(container: str) -> str:
    """The engine's health status of a container ("healthy", "starting", ...), "" if none."""
    result = docker("inspect", "-f", "{{.State.Health.Status}}", container, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def restart_healthy(stack: Stack, service: str, timeout: float) -> float:
    """`docker restart` of a service's container (as an operator, or the engine after a crash of
    PostgreSQL, would), then until its healthcheck passes again; the seconds that took."""
    container = stack.service_container(service)
    start = time.monotonic()
    docker("restart", container, timeout=timeout)
    wait_until(lambda: health(container) == "healthy", timeout, f"{service} healthy", [service], 1)
    return time.monotonic() - start


def follow_logs(container: str) -> subprocess.Popen:
    """`docker logs -f` of a container, read with .communicate() once it stopped: the log of a
    container that `docker compose down` is about to remove."""
    command = ["docker", "logs", "--follow", container]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def first_attempts(calls: dict[str, Callable[[], object]]) -> list[str]:
    """Each call made once, never retried; a line per call that raised, its cause first (the
    GraphQL client's own error repeats the query, the server's answer is in its cause)."""
    problems = []
    for name, call in calls.items():
        try:
            call()
        except Exception as exc:
            chain = [exc.__cause__, exc] if exc.__cause__ else [exc]
            text = "; ".join(f"{type(e).__name__}: {str(e)[:1000]}" for e in chain)
            problems.append(f"{name}: {text}")
    return problems


def leftovers(project: str, network: str) -> list[str]:
    """What of a stack is still on the engine after `docker compose down`: its containers (run
    containers included, found by the label docker-compose.yml gives them) and its network."""
    found = [f"run container {c[:12]}" for c in stack_module.run_containers(project)]
    label = f"label=com.docker.compose.project={project}"
    names = docker("ps", "-a", "--filter", label, "--format", "{{.Names}}", check=False)
    found += [f"service container {name}" for name in names.stdout.split()]
    if docker("network", "inspect", network, check=False).returncode == 0:
        found.append(f"network {network}")
    return found


def changed(before: dict, after: dict) -> list[str]:
    """A line per key whose value differs between two reports (the warehouse's row counts, the
    schedules' states)."""
    return [
        f"{key}: {before.get(key)!r} before, {after.get(key)!r} after"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
