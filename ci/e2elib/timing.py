"""Phase timings of the end-to-end check."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field


class PhaseFailure(Exception):
    """A phase failed. `services` names the compose services whose logs explain it."""

    def __init__(self, message: str, services: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.services = tuple(services)


@dataclass
class PhaseTimer:
    clock: callable = time.monotonic
    results: list[tuple[str, float, str]] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str):
        print(f"\n=== {name} ===", flush=True)
        start = self.clock()
        status = "failed"
        try:
            yield
            status = "ok"
        finally:
            elapsed = self.clock() - start
            self.results.append((name, elapsed, status))
            print(f"=== {name}: {status} in {elapsed:.1f}s ===", flush=True)

    def table(self) -> str:
        width = max([len(name) for name, _, _ in self.results] + [5])
        lines = [f"{'phase'.ljust(width)}  seconds  status"]
        for name, elapsed, status in self.results:
            lines.append(f"{name.ljust(width)}  {elapsed:7.1f}  {status}")
        total = sum(elapsed for _, elapsed, _ in self.results)
        lines.append(f"{'total'.ljust(width)}  {total:7.1f}")
        return "\n".join(lines)
