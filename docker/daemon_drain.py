"""Process of the daemon's container: runs `dagster-daemon run`, and drains runs when the container
is stopped.

    python /opt/dagster/daemon_drain.py dagster-daemon run --workspace workspace.yaml

Every run executes in a container of its own that DockerRunLauncher started from the daemon, not
a compose service: `docker compose down` (or `stop`) would leave it running, attached to the stack's
network (which compose then cannot remove), with no daemon to watch it. So on SIGTERM, which the
engine sends to this process (PID 1) first when the container is stopped, this process:

1. terminates every run in flight exactly as the UI's "Terminate" button does
   (`instance.run_coordinator.cancel_run`: DockerRunLauncher.terminate marks the run CANCELING and
   stops its container; the run worker turns the signal into an interruption of its step and
   reports the run CANCELED, or, seen when the signal came during its last step, finishes it and
   reports SUCCESS), after logging in each run why;
2. meanwhile stops the daemon (SIGTERM), so that no queued run is launched during the drain, then
   terminates whatever run was launched before it stopped;
3. waits until every such run has ended and its container is gone; a run whose container did not
   go within DRAIN_SECONDS has its container removed by force, and a run that could not report
   its own end (killed, or never got a container) is marked CANCELED with the same reason.

Queued runs stay queued: the daemon launches them after the next `docker compose up`. CANCELED,
unlike FAILURE, does not block automation: a partition whose last run was canceled and that is
still missing is requested again by the automation conditions after the next `up`.

The daemon's compose service gives this process `stop_grace_period` (longer than DRAIN_SECONDS)
before the engine kills it. A daemon that exits on its own (a crash) is not drained: this process
exits with its status and the restart policy brings the container back, runs untouched.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

# Seconds the drain may take in all. The daemon service's stop_grace_period (docker-compose.yml) is
# longer; within it, DockerRunLauncher.terminate gives each run container `stop_timeout` (30 s,
# dagster.yaml) between SIGTERM and SIGKILL, all of them at once.
DRAIN_SECONDS = 60
DAEMON_STOP_SECONDS = 20
IN_FLIGHT = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
CONTAINER_TAG = "docker/container_id"  # dagster_docker.docker_run_launcher.DOCKER_CONTAINER_ID_TAG
REASON = (
    "The stack was stopped while this run was in flight (the daemon's container received SIGTERM: "
    "`docker compose down` or `stop`), so the run was terminated as the UI's Terminate does: it "
    "ends CANCELED, unless it finished its last step within its container's stop_timeout. What it "
    "had not committed was rolled back; launch it again after `docker compose up` if needed "
    "(automation requests still-missing partitions again by itself)."
)


def log(message: str) -> None:
    print(f"daemon-drain: {message}", file=sys.stderr, flush=True)


def runs_in_flight(instance: DagsterInstance) -> list:
    return list(instance.get_runs(RunsFilter(statuses=IN_FLIGHT)))


def terminate(instance: DagsterInstance, run) -> None:
    """The UI's Terminate for one run, its reason logged in the run first."""
    instance.report_engine_event(REASON, run)
    try:
        if not instance.run_coordinator.cancel_run(run.run_id):
            log(f"run {run.run_id}: the run launcher could not reach its container")
    except Exception as exc:  # one run's failure must not stop the drain of the others
        log(f"run {run.run_id}: termination failed: {type(exc).__name__}: {exc}")


class Drain:
    """Terminates runs in flight and waits for them to end (their ids in `self.run_ids`)."""

    def __init__(
        self,
        instance: DagsterInstance,
        container_gone: Callable[[str], bool],
        remove_container: Callable[[str], None],
        terminate: Callable[[DagsterInstance, object], None] = terminate,
    ):
        self.instance, self.container_gone = instance, container_gone
        self.remove_container, self._terminate = remove_container, terminate
        self.run_ids: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="terminate")
        self._pending: list = []

    def sweep(self) -> None:
        """Starts terminating every run in flight not terminated yet; does not wait."""
        for run in runs_in_flight(self.instance):
            if run.run_id not in self.run_ids:
                self.run_ids.add(run.run_id)
                log(f"terminating run {run.run_id} ({run.job_name}, {run.status.value})")
                self._pending.append(self._pool.submit(self._terminate, self.instance, run))

    def _container_left(self, run) -> bool:
        container = run.tags.get(CONTAINER_TAG)
        return bool(container) and not self.container_gone(container)

    def _unsettled(self) -> list:
        """Runs of the drain not ended, or whose container is still there."""
        runs = [self.instance.get_run_by_id(run_id) for run_id in sorted(self.run_ids)]
        return [run for run in runs if run and (not run.is_finished or self._container_left(run))]

    def wait(self, deadline: float, poll: float = 1.0) -> list[str]:
        """Until every run ended and its container is gone, or `deadline` (time.monotonic());
        then clears what is left. The ids of the runs marked CANCELED here."""
        wait_for_futures(self._pending, timeout=max(0.0, deadline - time.monotonic()))
        while (left := self._unsettled()) and time.monotonic() < deadline:
            # a run container that the run launcher stopped is gone once it exits (auto_remove);
            # a run whose container never existed or was killed will not report its own end
            if not any(self._container_left(run) for run in left):
                break
            time.sleep(poll)
        marked = []
        for run in self._unsettled():
            if self._container_left(run):
                container = run.tags[CONTAINER_TAG]
                log(f"run {run.run_id}: container {container[:12]} still there, removing it")
                self.remove_container(container)
            if not run.is_finished:
                self.instance.report_run_canceled(run, message=REASON)
                marked.append(run.run_id)
        self._pool.shutdown(wait=False)
        return marked


def docker_container_functions() -> tuple[Callable[[str], bool], Callable[[str], None]]:
    """container_gone and remove_container through the engine (docker-py, as dagster-docker)."""
    # the image's dagster-docker dependency, imported here: the unit tests' environment lacks it
    import docker

    client = docker.from_env()

    def gone(container_id: str) -> bool:
        try:
            return client.containers.get(container_id).status in ("exited", "dead")
        except docker.errors.NotFound:
            return True

    def remove(container_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(container_id).remove(force=True)

    return gone, remove


def stop_daemon(daemon: subprocess.Popen) -> None:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=DAEMON_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        log(f"dagster-daemon did not stop within {DAEMON_STOP_SECONDS}s; killing it")
        daemon.kill()
        daemon.wait()


def main(command: list[str]) -> int:
    if not command:
        sys.exit("usage: daemon_drain.py dagster-daemon run [options]")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    daemon = subprocess.Popen(command)
    while daemon.poll() is None and not stopping.wait(1.0):
        pass
    if not stopping.is_set():
        return daemon.returncode  # it ended by itself: let the restart policy act, drain nothing
    deadline = time.monotonic() + DRAIN_SECONDS
    log("stopping: draining the runs in flight, then stopping dagster-daemon")
    with DagsterInstance.get() as instance:
        drain = Drain(instance, *docker_container_functions())
        drain.sweep()
        stop_daemon(daemon)
        drain.sweep()  # runs the daemon launched before it stopped
        marked = drain.wait(deadline)
    log(
        f"drained {len(drain.run_ids)} run(s)"
        + (f"; marked CANCELED here: {', '.join(marked)}" if marked else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
