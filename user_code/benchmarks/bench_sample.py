"""Time and memory of the sample generator (and of loading its output) at real-file scale.

    cd user_code && .venv/bin/python benchmarks/bench_sample.py [--rows 3000000] [--month 2023-01]

Each phase runs in its own child process so its peak RSS (ru_maxrss) is its own; the baseline is
the RSS of the child right after the imports. Files go to a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _phase(name: str, month: str, rows: int, folder: Path) -> dict:
    import duckdb

    from taxi_pipeline.sources.loading import load_trips_month, load_zones
    from taxi_pipeline.sources.sample import write_sample_trips, write_sample_zones

    baseline = _rss_mb()
    started = time.perf_counter()
    if name == "generate":
        path = write_sample_trips(month, folder, rows)
        write_sample_zones(folder)
        result = {"file_mb": round(path.stat().st_size / 2**20, 1)}
    else:
        conn = duckdb.connect(str(folder / "bench.duckdb"))
        load_zones(conn, folder / "taxi_zone_lookup.csv")
        report = load_trips_month(conn, folder / f"yellow_tripdata_{month}.parquet", month)
        conn.close()
        result = {"rows_loaded": report.rows_loaded, "rows_dropped": report.rows_dropped}
    result.update(
        phase=name,
        seconds=round(time.perf_counter() - started, 2),
        peak_rss_mb=round(_rss_mb(), 0),
        peak_rss_above_imports_mb=round(_rss_mb() - baseline, 0),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--month", default="2023-01")
    parser.add_argument("--phase", choices=["generate", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        print(json.dumps(_phase(args.phase, args.month, args.rows, args.folder)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_sample_") as tmp:
        for phase in ("generate", "load"):
            out = subprocess.run(
                [sys.executable, __file__, "--phase", phase, "--folder", tmp,
                 "--rows", str(args.rows), "--month", args.month],
                check=True, capture_output=True, text=True,
            ).stdout
            print(f"rows={args.rows} " + " ".join(f"{k}={v}" for k, v in json.loads(out).items()))


if __name__ == "__main__":
    main()
