import subprocess

import pytest

from e2elib import faults


def test_first_attempts_makes_each_call_once_and_names_those_that_raised():
    made = []

    def fails():
        made.append("logs")
        try:
            raise ConnectionError("500 Server Error: server closed the connection unexpectedly")
        except ConnectionError as cause:
            raise RuntimeError("Exception occured during execution of query logsForRun") from cause

    problems = faults.first_attempts({"logsForRun": fails, "runs": lambda: made.append("runs")})
    assert made == ["logs", "runs"]
    assert problems == [
        "logsForRun: ConnectionError: 500 Server Error: server closed the connection unexpectedly; "
        "RuntimeError: Exception occured during execution of query logsForRun"
    ]


def test_changed_names_each_differing_key_with_both_values():
    before = {"zones": 265, "trips": 10, "sensor": "STOPPED"}
    after = {"zones": 265, "trips": 9, "extra": 1}
    assert faults.changed(before, after) == [
        "extra: None before, 1 after",
        "sensor: 'STOPPED' before, None after",
        "trips: 10 before, 9 after",
    ]
    assert faults.changed(before, dict(before)) == []


def engine(answers):
    """A stand-in for stack.docker: (returncode, stdout) by the first words of a command."""
    calls = []

    def docker(*args, check=True, **kw):
        calls.append(args)
        key = next(k for k in answers if args[: len(k)] == k)
        code, out = answers[key]
        return subprocess.CompletedProcess(args, code, stdout=out, stderr="")

    return docker, calls


def test_leftovers_lists_run_and_service_containers_and_the_network(monkeypatch):
    docker, calls = engine(
        {
            ("ps", "-aq"): (0, "abcdef1234567890\n"),
            ("ps", "-a"): (0, "p-daemon-1\n"),
            ("network", "inspect"): (0, "[{}]"),
        }
    )
    monkeypatch.setattr(faults, "docker", docker)
    monkeypatch.setattr(faults.stack_module, "docker", docker)
    assert faults.leftovers("p", "p_dagster") == [
        "run container abcdef123456",
        "service container p-daemon-1",
        "network p_dagster",
    ]
    assert ("network", "inspect", "p_dagster") in calls


def test_nothing_is_left_when_the_engine_knows_nothing_of_the_stack(monkeypatch):
    docker, _ = engine({("ps",): (0, ""), ("network",): (1, "")})
    monkeypatch.setattr(faults, "docker", docker)
    monkeypatch.setattr(faults.stack_module, "docker", docker)
    assert faults.leftovers("p", "p_dagster") == []


def test_restart_waits_until_the_healthcheck_passes(monkeypatch):
    states = iter(["starting", "starting", "healthy"])
    docker, calls = engine({("restart",): (0, "c1")})
    monkeypatch.setattr(faults, "docker", docker)
    monkeypatch.setattr(faults, "health", lambda container: next(states))
    monkeypatch.setattr(faults.stack_module.time, "sleep", lambda s: None)

    class Stack:
        def service_container(self, service):
            return f"{service}-container"

    assert faults.restart_healthy(Stack(), "postgres", timeout=30) >= 0
    assert calls == [("restart", "postgres-container")]
    with pytest.raises(StopIteration):
        next(states)  # polled until healthy, not beyond
