"""The processes of the webserver and daemon containers (docker/*.py), on a real Dagster instance
and real SQLAlchemy pools; the Docker engine is replaced by a dict of containers."""

import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from dagster import DagsterRunStatus, instance_for_test
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker"))
import daemon_drain
import webserver_pre_ping

S = DagsterRunStatus


class Engine:
    """Run containers by id, with what a stop request does to them."""

    def __init__(self):
        self.containers: dict[str, str] = {}  # id -> "running" (stops) / "stuck" (does not)
        self.removed: list[str] = []

    def gone(self, container_id):
        return container_id not in self.containers

    def remove(self, container_id):
        self.containers.pop(container_id, None)
        self.removed.append(container_id)


# a queued run must say where its job comes from
ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(GrpcServerCodeLocationOrigin(host="user_code", port=4000), "r"), "j"
)


def add_run(instance, run_id, status, container=None):
    tags = {daemon_drain.CONTAINER_TAG: container} if container else {}
    run = DagsterRun(
        job_name="j", run_id=run_id, status=status, tags=tags, remote_job_origin=ORIGIN
    )
    return instance.add_run(run)


def messages(instance, run_id):
    return [entry.message or entry.dagster_event.message for entry in instance.all_logs(run_id)]


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def test_the_drain_terminates_runs_in_flight_and_ends_every_one(instance):
    engine = Engine()
    # "clean": its worker reports CANCELED and the container goes (what DockerRunLauncher and the
    # run worker do); "killed": the container goes without a word
    for run_id in ("clean", "killed"):
        engine.containers[run_id] = "running"
        add_run(instance, run_id, S.STARTED, container=run_id)
    add_run(instance, "queued", S.QUEUED)
    add_run(instance, "done", S.SUCCESS, container="done")
    terminated = []

    def terminate(inst, run):
        daemon_drain.terminate(inst, run)  # the reason logged, then the coordinator's cancel_run
        terminated.append(run.run_id)
        if run.run_id == "clean":
            inst.report_run_canceled(inst.get_run_by_id("clean"), message="worker interrupted")
        engine.containers.pop(run.run_id, None)

    drain = daemon_drain.Drain(instance, engine.gone, engine.remove, terminate)
    drain.sweep()
    add_run(instance, "late", S.STARTING)  # launched while the daemon stopped
    drain.sweep()
    marked = drain.wait(deadline=time.monotonic() + 60, poll=0.05)

    assert sorted(terminated) == ["clean", "killed", "late"]  # each once
    assert sorted(marked) == ["killed", "late"]
    assert engine.removed == []
    status = {r.run_id: r.status for r in instance.get_runs()}
    assert status == {
        "clean": S.CANCELED,
        "killed": S.CANCELED,
        "late": S.CANCELED,
        "queued": S.QUEUED,  # launched after the next `up`
        "done": S.SUCCESS,
    }
    for run_id in ("clean", "killed", "late"):
        assert daemon_drain.REASON in messages(instance, run_id), run_id
    assert messages(instance, "killed").count(daemon_drain.REASON) == 2  # logged, then canceled
    assert daemon_drain.REASON not in messages(instance, "queued")


def test_a_container_that_outlives_the_deadline_is_removed(instance):
    engine = Engine()
    engine.containers["stuck"] = "stuck"  # ignores the stop
    add_run(instance, "stuck", S.STARTED, container="stuck")
    drain = daemon_drain.Drain(instance, engine.gone, engine.remove, lambda inst, run: None)
    drain.sweep()
    start = time.monotonic()
    assert drain.wait(deadline=start + 0.5, poll=0.05) == ["stuck"]
    assert time.monotonic() - start >= 0.5
    assert engine.removed == ["stuck"] and engine.containers == {}
    assert instance.get_run_by_id("stuck").status == S.CANCELED


def test_the_drain_waits_for_a_worker_that_ends_in_time(instance):
    """A run whose container is still up is waited for, not marked CANCELED over its own end."""
    engine = Engine()
    engine.containers["slow"] = "running"
    add_run(instance, "slow", S.STARTED, container="slow")
    polls = []

    def gone(container_id):
        polls.append(container_id)
        if len(polls) == 3:  # the worker reports its end, then its container goes
            instance.report_run_canceled(instance.get_run_by_id("slow"), message="interrupted")
            engine.containers.clear()
        return engine.gone(container_id)

    drain = daemon_drain.Drain(instance, gone, engine.remove, lambda inst, run: None)
    drain.sweep()
    assert drain.wait(deadline=time.monotonic() + 5, poll=0.01) == []
    assert instance.get_run_by_id("slow").status == S.CANCELED
    assert daemon_drain.REASON not in messages(instance, "slow")
    assert engine.removed == []


def test_a_termination_that_raises_does_not_stop_the_drain(instance, capsys, monkeypatch):
    add_run(instance, "a", S.STARTED)
    add_run(instance, "b", S.STARTED)

    def cancel_run(run_id):
        raise RuntimeError(f"engine unreachable for {run_id}")

    monkeypatch.setattr(instance.run_coordinator, "cancel_run", cancel_run)
    drain = daemon_drain.Drain(instance, lambda c: True, lambda c: None)
    drain.sweep()
    assert sorted(drain.wait(deadline=time.monotonic() + 5, poll=0.01)) == ["a", "b"]
    assert "termination failed: RuntimeError: engine unreachable for a" in capsys.readouterr().err


def dead_pooled_connection(tmp_path):
    """An engine whose one pooled connection was closed behind the pool's back, as a PostgreSQL
    restart closes the webserver's."""
    engine = sqlalchemy.create_engine(
        f"sqlite:///{tmp_path / 'db'}", poolclass=QueuePool, pool_reset_on_return=None
    )
    pooled = engine.raw_connection()
    pooled.driver_connection.close()
    pooled.close()  # back into the pool, dead
    assert engine.pool.checkedin() == 1
    return engine


def test_without_the_ping_a_dead_pooled_connection_fails_the_next_request(tmp_path):
    event.remove(QueuePool, "checkout", webserver_pre_ping.ping_before_use)
    try:
        engine = dead_pooled_connection(tmp_path)
        closed = pytest.raises(sqlalchemy.exc.ProgrammingError, match="closed database")
        with closed, engine.connect() as conn:
            conn.exec_driver_sql("select 1")
    finally:
        event.listen(QueuePool, "checkout", webserver_pre_ping.ping_before_use)


def test_with_the_ping_the_pool_replaces_a_dead_connection_before_use(tmp_path):
    engine = dead_pooled_connection(tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select 1").scalar() == 1
    assert engine.pool.checkedin() == 1
