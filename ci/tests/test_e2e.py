import argparse
import calendar

import e2e
import pytest

from e2elib.stack import PhaseFailure


def test_the_fixed_range_and_its_days():
    args = e2e.parse_args(["--tag", "t"])
    assert (args.start_month, args.end_month, args.tag) == ("2023-01", "2023-02", "t")
    assert sum(calendar.monthrange(2023, int(m[5:7]))[1] for m in e2e.MONTHS) == e2e.DAYS


def test_e2e_env_uses_sample_data_free_ports_and_loopback(monkeypatch):
    monkeypatch.setenv("PYTHON_BASE_IMAGE", "airgap/python:3.11-slim")
    args = argparse.Namespace(
        trips_per_month=100, start_month="2023-01", end_month="2023-02", tag="abc"
    )
    example = "DAGSTER_WEBSERVER_PORT=3000\nSUPERSET_PORT=8088\nSUPERSET_BIND=0.0.0.0\n"
    env = e2e.e2e_env(args, example)
    assert env["TAXI_DATA_SOURCE"] == "sample"
    assert env["TAXI_IMAGE_TAG"] == "abc"
    assert env["PYTHON_BASE_IMAGE"] == "airgap/python:3.11-slim"
    assert env["SUPERSET_BIND"] == "127.0.0.1"
    assert env["DAGSTER_WEBSERVER_PORT"] not in ("3000", env["SUPERSET_PORT"])


def test_read_env_file(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# c\nA=1\n\nB=two=2\n")
    assert e2e.read_env_file(path) == {"A": "1", "B": "two=2"}


def test_phases_are_named_functions_in_order():
    names = [name for name, _ in e2e.PHASES]
    assert names[0] == "build images" and names[1] == "compose up -> healthy"
    assert len(set(names)) == len(names)
    assert all(fn.__name__.startswith("phase_") for _, fn in e2e.PHASES)


def test_phases_are_timed_and_failures_recorded(monkeypatch):
    ticks = iter([0.0, 1.5, 2.0, 5.0])
    monkeypatch.setattr(e2e.time, "monotonic", lambda: next(ticks))
    timings = []
    e2e.run_phase(timings, "one", lambda: None)

    def failing():
        raise PhaseFailure("no", ["daemon"])

    with pytest.raises(PhaseFailure) as failure:
        e2e.run_phase(timings, "two", failing)
    assert failure.value.services == ("daemon",)
    assert timings == [
        {"phase": "one", "seconds": 1.5, "status": "ok"},
        {"phase": "two", "seconds": 3.0, "status": "failed"},
    ]


def test_fail_if_names_every_problem():
    e2e.fail_if([], "nothing")
    with pytest.raises(PhaseFailure, match="warehouse:\n  zones: 1, expected 265\n  b") as f:
        e2e.fail_if(["zones: 1, expected 265", "b"], "warehouse", ["user_code"])
    assert f.value.services == ("user_code",)


def test_chart_loop_counts_failed_queries_per_window():
    from superset_checks import ChartLoop, ChartQuery

    loop = ChartLoop("http://127.0.0.1:1", "admin", "x")
    loop.queries = [
        ChartQuery(1.0, 0.1, None),
        ChartQuery(2.0, 0.3, "HTTP 500"),
        ChartQuery(3.0, 0.2, None),
    ]
    everything = loop.stats()
    assert (everything["requests"], everything["errors"]) == (3, 1)
    assert everything["failures"] == ["1 of 3 chart queries failed"]
    assert everything["latency_ms"] == {"median": 200, "p95": 300, "max": 300}
    assert loop.stats(2.5)["failures"] == [] and loop.stats(2.5)["requests"] == 1
    assert loop.stats(10.0)["failures"] == ["no chart query was made"]


def test_no_setting_of_the_throwaway_stack_comes_from_the_shell(tmp_path, monkeypatch):
    names = ("DAGSTER_POSTGRES_PASSWORD", "TAXI_DATA_SOURCE", "DAGSTER_WEBSERVER_PORT")
    for name in (*names, "TAXI_IMAGE_TAG", "TAXI_END_MONTH"):
        monkeypatch.setenv(name, "from the shell")
    args = e2e.parse_args(["--tag", "t"])
    env_file = e2e.throwaway_env(args, tmp_path, "e2e.env")
    stack = e2e.stack.Stack.create("taxi-e2e-1-aa", env_file)
    assert not set(stack.environ) & {*names, "TAXI_IMAGE_TAG", "TAXI_END_MONTH"}
    assert e2e.read_env_file(env_file)["TAXI_DATA_SOURCE"] == "sample"
