"""How long loading the code location takes, as the code server does it on start and reload.

Each repetition is a fresh interpreter that imports `taxi_pipeline.definitions` and resolves
the repository (what `dagster code-server start` does), timed from inside so interpreter start-up
is excluded; `import dagster, dagster_dbt` alone is timed the same way for comparison. The dbt
manifest must already exist (as in the image): nothing here runs dbt.

    python benchmarks/bench_definitions_load.py [repetitions]
"""

import statistics
import subprocess
import sys

PROBES = {
    "import dagster, dagster_dbt": "import dagster, dagster_dbt",
    "load taxi_pipeline.definitions": (
        "import dagster, dagster_dbt\n"
        "t1 = time.perf_counter()\n"
        "from taxi_pipeline.definitions import defs\n"
        "defs.get_repository_def().get_all_jobs()\n"
        "print(time.perf_counter() - t1, file=sys.stderr)\n"
    ),
}


def run(code: str) -> tuple[float, float | None]:
    wrapped = f"import sys, time\nt0 = time.perf_counter()\n{code}\nprint(time.perf_counter() - t0)"
    done = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, check=True)
    extra = done.stderr.strip().splitlines()
    after_imports = float(extra[-1]) if extra and extra[-1].replace(".", "", 1).isdigit() else None
    return float(done.stdout.strip().splitlines()[-1]), after_imports


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for name, code in PROBES.items():
        totals, own = [], []
        for _ in range(repetitions):
            total, after_imports = run(code)
            totals.append(total)
            if after_imports is not None:
                own.append(after_imports)
        line = f"{name}: median {statistics.median(totals):.2f} s (min {min(totals):.2f}, n={repetitions})"
        if own:
            line += f"; of which the code location itself {statistics.median(own):.2f} s"
        print(line)


if __name__ == "__main__":
    main()
