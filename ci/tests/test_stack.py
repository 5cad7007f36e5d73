import json
import subprocess

import pytest

from e2elib import stack as compose


def test_compose_variables_are_found_with_and_without_defaults():
    text = "a: ${ONE}\nb: ${TWO:-x}\nc: ${THREE:?msg}\nd: $$ESCAPED\n"
    assert compose.compose_variables(text) == {"ONE", "TWO", "THREE"}


def test_the_shell_cannot_leak_settings_into_the_throwaway_stack():
    environ = {
        "PATH": "/bin",
        "TAXI_DATA_SOURCE": "nyc-tlc",
        "COMPOSE_PROJECT_NAME": "mine",
        "DOCKER_HOST": "unix:///x",
    }
    clean = compose.sanitized_environ(environ, {"TAXI_DATA_SOURCE"})
    assert clean == {"PATH": "/bin", "DOCKER_HOST": "unix:///x"}


def test_the_repository_compose_file_reads_its_settings_from_variables():
    variables = compose.compose_variables(compose.COMPOSE_FILE.read_text())
    assert {
        "DAGSTER_POSTGRES_PASSWORD",
        "TAXI_DATA_SOURCE",
        "COMPOSE_PROJECT_NAME",
        "DAGSTER_WEBSERVER_PORT",
    } <= variables


def test_recorded_engine_events_are_read_back(tmp_path):
    recorder = compose.EventRecorder("p", tmp_path / "events.jsonl")
    assert recorder.events() == []
    entries = [{"Action": "create"}, {"Action": "die"}]
    recorder.path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert recorder.events() == entries


def test_wait_until_returns_the_first_truthy_answer_or_fails_naming_what(monkeypatch):
    answers = iter([None, {}, {"done": 1}])
    monkeypatch.setattr(compose.time, "sleep", lambda s: None)
    assert compose.wait_until(lambda: next(answers), 60, "x") == {"done": 1}
    clock = iter([0.0, 0.0, 100.0])
    monkeypatch.setattr(compose.time, "monotonic", lambda: next(clock))
    with pytest.raises(compose.PhaseFailure, match="backfill b1: not done after 10s") as failure:
        compose.wait_until(lambda: None, 10, "backfill b1", ["daemon"])
    assert failure.value.services == ("daemon",)


def test_only_dead_end_to_end_projects_are_stale():
    projects = [
        {"Name": "taxi-e2e-100-abc123"},
        {"Name": "taxi-e2e-200-def456"},
        {"Name": "taxi-platform"},
        {"Name": "taxi-e2e-oops"},
    ]
    assert compose.stale_projects(projects, alive=lambda pid: pid == 200) == ["taxi-e2e-100-abc123"]


def test_new_project_names_are_valid_and_recognised():
    name = compose.new_project_name(pid=4242)
    assert name.startswith("taxi-e2e-4242-") and name == name.lower()
    assert compose.stale_projects([{"Name": name}], alive=lambda pid: False) == [name]


def test_free_port_is_bindable():
    port = compose.free_port()
    assert 1024 < port < 65536


def test_container_lifecycles_group_events_by_container():
    def event(action, cid, run="r1"):
        return {
            "Type": "container",
            "Action": action,
            "Actor": {"ID": cid, "Attributes": {"dagster/run_id": run, "dagster/job_name": "job"}},
        }

    events = [
        event("create", "c1"),
        event("start", "c1"),
        event("die", "c1"),
        event("destroy", "c1"),
        event("create", "c2", "r2"),
        {"Type": "container", "Action": "start", "Actor": {"ID": "x", "Attributes": {}}},
    ]
    lives = compose.container_lifecycles(events)
    assert lives == {
        "c1": {"run_id": "r1", "actions": ["create", "start", "die", "destroy"]},
        "c2": {"run_id": "r2", "actions": ["create"]},
    }


def test_stack_commands_name_the_project_env_file_and_compose_file(tmp_path, monkeypatch):
    calls = []
    done = subprocess.CompletedProcess([], 0, stdout="", stderr="")
    monkeypatch.setattr(compose, "docker", lambda *args, **kw: calls.append((args, kw)) or done)
    stack = compose.Stack("taxi-e2e-1-aa", tmp_path / "e.env", environ={"PATH": "/bin"})
    stack.compose("up", "-d")
    args, kw = calls[0]
    assert args[:3] == ("compose", "-p", "taxi-e2e-1-aa")
    assert f"--env-file={tmp_path / 'e.env'}" in args and f"-f={compose.COMPOSE_FILE}" in args
    assert args[-2:] == ("up", "-d") and kw["env"] == {"PATH": "/bin"}


def test_a_failed_compose_command_fails_the_phase_with_its_output(tmp_path, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, stdout="", stderr="no such service: x")
    monkeypatch.setattr(compose, "docker", lambda *args, **kw: failed)
    stack = compose.Stack("taxi-e2e-1-aa", tmp_path / "e.env", environ={})
    with pytest.raises(compose.PhaseFailure, match="no such service: x"):
        stack.compose("logs", "x", check=True)
    assert stack.compose("logs", "x", check=False) is failed
