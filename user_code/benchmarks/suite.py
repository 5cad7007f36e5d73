"""The benchmark suite: every figure the platform is judged on, each against a floor.

    cd user_code
    uv run python -m benchmarks.suite                          # real size: 12 months x 3 M trips
    uv run python -m benchmarks.suite --rows 20000 --months 2 --repeat 1   # a quick run (CI)

Prints a table (what, project time, floor time, ratio, rows/s, peak memory, target) and writes
the same as JSON (--json, default benchmarks/results.json). Figures are reported, never asserted:
this machine is shared and noisy, so each project time is divided by a floor measured in the same
run (bare DuckDB on the same file, or the same SQL that dbt ran executed directly), and short
cases take the median of --repeat runs, project and floor alternating.

Sample months (the project's own generator, the TLC's layout) are generated once and cached in
--cache (default ~/.cache/taxi-platform/bench/rows-N); warehouses are built fresh in a temporary
folder that is removed at the end.

Cases (see benchmarks/cases.py for how each is measured):
  load           one month through `load_trips_month` vs CREATE TABLE AS SELECT * FROM read_parquet
  dbt build      every model and test over all months vs the same compiled SQL run directly
  daily step     one `daily_metrics` day partition as Dagster runs it, all months loaded vs one
  dbt overhead   that step's dbt invocation vs its SQL run directly; and dbt's import floor
  definitions    loading the code location vs `import dagster, dagster_dbt`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

USER_CODE = Path(__file__).resolve().parents[1]
DAY = "2023-01-15"
CASES = (
    "load",
    "dbt",
    "daily",
    "definitions",
)  # the day partition the daily case builds: in the first month, loaded in both


@dataclass
class Row:
    what: str
    project_s: float
    floor_s: float | None
    ratio: float | None
    rows: int | None
    peak_mb: float | None
    target: str
    note: str = ""
    # every run's report as the case printed it (JSON only), to see the spread behind a median
    samples: dict | None = None

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.project_s if self.rows and self.project_s else None


def run_case(case: str, env: dict[str, str] | None = None, **arguments) -> dict:
    """Run one case of benchmarks/cases.py in a fresh interpreter; return its JSON report."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cases", case, json.dumps(arguments)],
        cwd=USER_CODE, env={**os.environ, **(env or {})}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(
            f"benchmark case {case} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(repeat: int, project, floor) -> tuple[list[dict], list[dict]]:
    """Run project and floor `repeat` times each, alternating, so drift hits both alike."""
    projects, floors = [], []
    for _ in range(repeat):
        projects.append(project())
        floors.append(floor())
    return projects, floors


def median(reports: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in reports)


def months_of(count: int) -> list[str]:
    return [f"2023-{m:02d}" for m in range(1, count + 1)]


def sample_data(cache: Path, rows: int, months: list[str]) -> Path:
    """The sample month files and the zone lookup, generated once per size."""
    from taxi_pipeline.sources.layout import ZONES_FILE_NAME, trips_file_name
    from taxi_pipeline.sources.sample import write_sample_trips, write_sample_zones

    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / ZONES_FILE_NAME).exists():
        write_sample_zones(cache)
    for month in months:
        if not (cache / trips_file_name(month)).exists():
            print(f"  generating {rows} trips for {month} into {cache}", flush=True)
            write_sample_trips(month, cache, rows=rows)
    return cache


def pipeline_env(work: Path, database: Path, months: list[str], target: Path) -> dict[str, str]:
    """The settings a run of the code location would have, pointed at this benchmark's files."""
    return {
        "TAXI_DATA_SOURCE": "sample",
        "TAXI_START_MONTH": months[0],
        "TAXI_END_MONTH": months[-1],
        "TAXI_DATA_DIR": str(work / "data"),
        "DUCKDB_DATABASE": str(database),
        "TAXI_PUBLISHED_DATABASE": str(work / "published" / "taxi.duckdb"),
        "DBT_TARGET_PATH": str(target),
        "DAGSTER_HOME": str(work / "dagster_home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def fresh_copy(source: Path, folder: Path) -> Path:
    """A copy of a warehouse under the same file name (dbt's compiled SQL names the catalog)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{source.name}*"):
        old.unlink()
    return Path(shutil.copy2(source, folder / source.name))


def bench_load(args, raw: Path, work: Path, month: str) -> Row:
    from taxi_pipeline.sources.layout import trips_file_name

    parquet = str(raw / trips_file_name(month))

    def fresh(name: str) -> str:
        path = work / "load" / name / "taxi.duckdb"
        shutil.rmtree(path.parent, ignore_errors=True)
        path.parent.mkdir(parents=True)
        return str(path)

    projects, floors = alternate(
        args.repeat,
        lambda: run_case("load_project", parquet=parquet, database=fresh("project"), month=month),
        lambda: run_case("load_floor", parquet=parquet, database=fresh("floor")),
    )
    project, floor = median(projects), median(floors)
    return Row(
        "load one month (load_trips_month)", project, floor, project / floor,
        projects[0]["rows"], max(r["peak_mb"] for r in projects), "<= 1.3x",
        f"floor CREATE TABLE AS read_parquet: {max(r['peak_mb'] for r in floors):.0f} MB peak",
        {"project": projects, "floor": floors},
    )  # fmt: skip


def build_warehouse(raw: Path, work: Path, name: str, months: list[str]) -> tuple[Path, dict]:
    database = work / name / "taxi.duckdb"
    database.parent.mkdir(parents=True)
    report = run_case("load_months", raw_dir=str(raw), database=str(database), months=months)
    return database, report


def bench_dbt_build(work: Path, warehouse: Path, months: list[str]) -> tuple[Row, Path]:
    """`dbt build` of everything over the loaded months; returns the built warehouse too."""
    built = fresh_copy(warehouse, work / "dbt-build")
    target = work / "dbt-build-target"
    # The parse state a deployment has (baked into the image): parse once, untimed.
    run_case("dbt_command", database=str(built), target=str(target), args=["parse"])
    project = run_case("dbt_command", database=str(built), target=str(target), args=["build"])
    floor_db = fresh_copy(warehouse, work / "dbt-floor")
    floor = run_case(
        "sql_floor", database=str(floor_db),
        run_results=str(target / "run_results.json"), manifest=str(target / "manifest.json"),
    )  # fmt: skip
    rows = _count(built, "select count(*) from main.stg_trips")
    row = Row(
        f"dbt build, all models and tests, {len(months)} months", project["seconds"],
        floor["seconds"], project["seconds"] / floor["seconds"], rows, project["peak_mb"],
        "<= 1.5x", f"{project['nodes']} nodes; dbt's own elapsed {project['dbt_elapsed']:.1f} s",
        {"project": [project], "floor": [floor]},
    )  # fmt: skip
    return row, built


def _count(database: Path, sql: str) -> int:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def bench_daily(args, work: Path, built_1: Path, built_n: Path, months: list[str]) -> list[Row]:
    """One day partition through Dagster with 1 month loaded vs all months; then that step's dbt
    invocation vs the same SQL run directly (dbt's overhead per step)."""
    runs: dict[str, list[dict]] = {"1": [], "n": []}
    for _ in range(args.repeat):
        for key, source in (("1", built_1), ("n", built_n)):
            folder = work / f"daily-{key}"
            database = fresh_copy(source, folder)
            target = folder / "target"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            # seeded as in a run container: the deployment's parse state for this profile
            run_case("dbt_command", database=str(database), target=str(target), args=["parse"])
            runs[key].append(
                run_case("daily_step", env=pipeline_env(folder, database, months, target), day=DAY)
            )
    one, many = median(runs["1"]), median(runs["n"])
    sql_one, sql_many = median(runs["1"], "sql_seconds"), median(runs["n"], "sql_seconds")
    trips = _count(
        built_n,
        f"select count(*) from main.stg_trips where cast(pickup_datetime as date) = '{DAY}'",
    )
    rows = [
        Row(
            f"daily_metrics day step, {len(months)} months loaded vs 1",
            many,
            one,
            many / one,
            trips,
            max(r["peak_mb"] for r in runs["n"]),
            "<= 1.2x",
            f"dbt SQL alone {sql_many:.2f} s vs {sql_one:.2f} s "
            f"({sql_many / sql_one:.2f}x); full re-parse in "
            f"{sum(r['full_parse'] for r in runs['n'] + runs['1'])} of {2 * args.repeat} steps",
            {"project": runs["n"], "floor": runs["1"]},
        )
    ]

    # dbt's overhead: the step's own dbt command again, from process start to exit, vs its SQL
    last = runs["n"][-1]
    overheads, floors, imports = [], [], []
    for _ in range(args.repeat):
        # the step's own warehouse path and parse state: the profile is part of dbt's state key
        database = fresh_copy(built_n, work / "daily-n")
        target = work / "daily-n" / "overhead"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        shutil.copy(Path(last["target"]).parent / "partial_parse.msgpack", target)
        command = run_case(
            "dbt_command", database=str(database), target=str(target), args=last["dbt_args"]
        )
        floor_db = fresh_copy(built_n, work / "overhead-floor")
        floor = run_case("sql_floor", database=str(floor_db),
                         run_results=str(target / "run_results.json"),
                         manifest=str(target / "manifest.json"))  # fmt: skip
        overheads.append(command)
        floors.append(floor)
        imports.append(run_case("dbt_import_floor"))
    wall, sql = median(overheads), median(floors)
    dbt_imports = median(imports)
    rows.append(
        Row(
            "dbt step overhead (dbt process - its SQL)",
            wall - sql,
            dbt_imports,
            None,
            None,
            max(r["peak_mb"] for r in overheads),
            "<= 1 s",
            f"dbt process {wall:.2f} s, its SQL run directly {sql:.2f} s; floor = Python start "
            f"+ `import dbt.cli.main, dbt.adapters.duckdb`; parse skipped: "
            f"{not any(r['full_parse'] for r in overheads)}",
            {"project": overheads, "floor": imports, "sql": floors},
        )
    )
    return rows


def bench_definitions(args) -> Row:
    repeat = max(args.repeat, 3)
    projects, floors = alternate(
        repeat, lambda: run_case("definitions_load"), lambda: run_case("imports_floor")
    )
    project, floor = median(projects), median(floors)
    return Row(
        "load the code location (definitions)", project, floor, project / floor, None,
        max(r["peak_mb"] for r in projects), "<= floor + 0.5 s",
        f"+{project - floor:.2f} s over `import dagster, dagster_dbt`",
        {"project": projects, "floor": floors},
    )  # fmt: skip


def machine() -> dict:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}{unit}"


def print_table(rows: list[Row]) -> None:
    header = ("what", "project", "floor", "ratio", "rows/s", "peak MB", "target")
    lines = [
        (r.what, _fmt(r.project_s, " s"), _fmt(r.floor_s, " s"), _fmt(r.ratio, "x"),
         "" if r.rows_per_s is None else f"{r.rows_per_s:,.0f}", _fmt(r.peak_mb, "", 0), r.target)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    for line in (header, *lines):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    for r in rows:
        if r.note:
            print(f"  - {r.what}: {r.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000, help="trips per sample month")
    parser.add_argument("--months", type=int, default=12, help="months loaded (from 2023-01)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each short case (median)")
    parser.add_argument("--cache", type=Path, help="where sample months are kept between runs")
    parser.add_argument("--json", type=Path, default=USER_CODE / "benchmarks" / "results.json")
    parser.add_argument(
        "--cases",
        type=lambda v: v.split(","),
        default=list(CASES),
        help=f"comma-separated subset of {','.join(CASES)}",
    )
    args = parser.parse_args()
    if not set(args.cases) <= set(CASES):
        parser.error(f"--cases: choose from {','.join(CASES)}")
    if not 2 <= args.months <= 12 or args.rows < 100 or args.repeat < 1:
        parser.error("--months must be 2..12, --rows at least 100, --repeat at least 1")
    cache = args.cache or Path.home() / ".cache" / "taxi-platform" / "bench" / f"rows-{args.rows}"
    months = months_of(args.months)

    started = time.time()
    print(f"benchmark: {args.months} months x {args.rows} trips, repeat {args.repeat}; "
          f"machine {machine()}", flush=True)  # fmt: skip
    raw = sample_data(cache, args.rows, months)
    # Bytecode, as the image has it (uv does not compile on sync, and some shells set
    # PYTHONDONTWRITEBYTECODE): otherwise every fresh interpreter compiles its imports from
    # source and the import-bound cases measure the compiler. Quick once the .pyc files exist.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *sys.path[1:],
                    str(USER_CODE / "taxi_pipeline"), str(USER_CODE / "benchmarks")],
                   capture_output=True)  # fmt: skip
    # The manifest the definitions and the Dagster step load (the image bakes it at build time).
    # Its relation names carry the warehouse file's name as DuckDB catalog: "taxi", as below.
    with tempfile.TemporaryDirectory(prefix="taxi-bench-manifest-") as tmp:
        env = pipeline_env(Path(tmp), Path(tmp) / "taxi.duckdb", months, Path(tmp) / "target")
        prepare = (
            "from taxi_pipeline.project import build_dbt_project\n"
            "from taxi_pipeline.settings import load_settings\n"
            "project = build_dbt_project(load_settings())\n"
            "project.preparer.prepare(project)\n"
        )
        subprocess.run(
            [sys.executable, "-c", prepare],
            cwd=USER_CODE,
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="taxi-bench-") as tmp:
        work = Path(tmp)
        if "load" in args.cases:
            print("- loading one month", flush=True)
            rows.append(bench_load(args, raw, work, months[0]))
        if {"dbt", "daily"} & set(args.cases):
            print(f"- loading 1 and {len(months)} months (set-up)", flush=True)
            wh_1, _ = build_warehouse(raw, work, "wh-1", months[:1])
            wh_n, loaded = build_warehouse(raw, work, "wh-n", months)
            rows.append(Row(
                f"set-up: zones and {len(months)} months through the loader", loaded["seconds"],
                None, None, loaded["rows"], loaded["peak_mb"], "(information)"))  # fmt: skip
            print(f"- dbt build over {len(months)} months, and over 1 (set-up)", flush=True)
            build_row, built_n = bench_dbt_build(work, wh_n, months)
            if "dbt" in args.cases:
                rows.append(build_row)
            if "daily" in args.cases:
                _, built_1 = bench_dbt_build(work / "one", wh_1, months[:1])
                print("- daily_metrics day step and dbt's overhead", flush=True)
                rows += bench_daily(args, work, built_1, built_n, months)
        if "definitions" in args.cases:
            print("- code location load", flush=True)
            rows.append(bench_definitions(args))

    print()
    print_table(rows)
    report = {
        "size": {"rows_per_month": args.rows, "months": args.months, "repeat": args.repeat},
        "machine": machine(),
        "minutes": round((time.time() - started) / 60, 1),
        "results": [{**asdict(r), "rows_per_s": r.rows_per_s} for r in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json} ({report['minutes']} min; load average now "
          f"{report['machine']['load_average']})")  # fmt: skip


if __name__ == "__main__":
    main()
