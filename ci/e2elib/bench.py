"""Measuring helpers of ci/bench_stack.py: run-container memory and chart-query latency.

MemorySampler: every second, lists the stack's run containers (label taxi-platform.stack) and reads
    each one's memory cgroup while it lives: the kernel's high-water mark (cgroup v1
    memory.max_usage_in_bytes, cgroup v2 memory.peak), the largest RSS seen (memory.stat), the
    limit, and the OOM-kill counter. The high-water mark is kept by the kernel, so a one-second
    poll misses only what grows in the container's last second. It includes page cache (DuckDB's
    file I/O), which the kernel reclaims before it OOM-kills: RSS is the part that cannot be.
chart_value: the value of a big-number chart, through Superset's chart data API.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .stack import REPO_ROOT, STACK_LABEL, docker

sys.path.insert(0, str(REPO_ROOT / "superset" / "tests" / "e2e"))
from superset_checks import Api, chart_data

# (high-water mark file, stat file, OOM-kill counter file) per cgroup layout
_CGROUP_LAYOUTS = [
    ("/sys/fs/cgroup/memory/docker/{id}", "memory.max_usage_in_bytes", "memory.oom_control"),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope", "memory.peak", "memory.events"),
    ("/sys/fs/cgroup/docker/{id}", "memory.peak", "memory.events"),
]
DUCKDB_PROBE = (
    "import duckdb; print(duckdb.sql(\"select current_setting('memory_limit'), "
    "current_setting('threads')\").fetchone())"
)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass
class ContainerMemory:
    container_id: str
    run_id: str
    job: str
    limit_bytes: int  # HostConfig.Memory (0: none)
    peak_bytes: int = 0  # kernel high-water mark, page cache included
    max_rss_bytes: int = 0  # largest RSS seen by the poll
    oom_kills: int = 0
    samples: int = 0
    source: str = ""


@dataclass
class MemorySampler:
    project: str
    interval: float = 1.0
    containers: dict[str, ContainerMemory] = field(default_factory=dict)
    load: list[tuple[float, tuple[float, float, float]]] = field(default_factory=list)
    duckdb_probe: dict | None = None

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memory-sampler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        last_load = 0.0
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:
                print(f"  (memory sampler: {exc})", flush=True)
            if time.monotonic() - last_load >= 30:
                self.load.append((time.time(), os.getloadavg()))
                last_load = time.monotonic()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        ids = docker(
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            f"label={STACK_LABEL}={self.project}",
            check=False,
            timeout=30,
        ).stdout.split()
        for cid in ids:
            record = self.containers.get(cid)
            if record is None:
                record = self._new(cid)
                if record is None:
                    continue
            self._read_cgroup(record)
            if self.duckdb_probe is None and record.samples > 0:
                self._probe_duckdb(record)

    def _new(self, cid: str) -> ContainerMemory | None:
        out = docker("inspect", cid, check=False, timeout=30)
        if out.returncode != 0:
            return None
        info = json.loads(out.stdout)[0]
        labels = info["Config"].get("Labels") or {}
        record = ContainerMemory(
            cid,
            labels.get("dagster/run_id", ""),
            labels.get("dagster/job_name", ""),
            int(info["HostConfig"].get("Memory") or 0),
        )
        self.containers[cid] = record
        return record

    def _read_cgroup(self, record: ContainerMemory) -> None:
        for directory, peak_file, oom_file in _CGROUP_LAYOUTS:
            base = Path(directory.format(id=record.container_id))
            peak = _read(base / peak_file)
            if peak is None:
                continue
            stat = _keyed(_read(base / "memory.stat"))
            rss = stat.get("total_rss", stat.get("anon", 0))
            record.peak_bytes = max(record.peak_bytes, int(peak))
            record.max_rss_bytes = max(record.max_rss_bytes, rss)
            record.oom_kills = max(
                record.oom_kills, _keyed(_read(base / oom_file)).get("oom_kill", 0)
            )
            record.samples += 1
            record.source = str(base / peak_file).replace(record.container_id, "<id>")
            return

    def _probe_duckdb(self, record: ContainerMemory) -> None:
        """What memory_limit DuckDB picks inside a live run container (from the cgroup limit?)."""
        out = docker(
            "exec", record.container_id, "python", "-c", DUCKDB_PROBE, check=False, timeout=60
        )
        if out.returncode == 0:
            self.duckdb_probe = {
                "container_limit_bytes": record.limit_bytes,
                "job": record.job,
                "memory_limit, threads": out.stdout.strip(),
            }


def chart_value(url: str, user: str, password: str, slice_name: str) -> float | None:
    """The single value of a big-number chart (None while it has no data)."""
    api = Api(url, timeout=60)
    api.login(user, password)
    ids = [
        c["id"] for c in api.listing("chart", ["id", "slice_name"]) if c["slice_name"] == slice_name
    ]
    if not ids:
        raise RuntimeError(f"no chart named {slice_name!r}")
    try:
        _, rows = chart_data(api, ids[0])
    except RuntimeError:
        return None  # no snapshot published yet
    return rows[0][0] if rows and rows[0] else None
