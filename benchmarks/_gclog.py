"""The cyclic collector's passes in one process, as the bus benchmarks report them.

Two uses:

* in a process of ours (the paced simulator, the reader): ``log = GcLog(); log.start()``,
  then ``log.summary(since_ms, until_ms)`` for a window of wall-clock time;
* around a process we do not edit (``rxconnector publish``)::

      python benchmarks/_gclog.py OUT.json -m rxconnector publish binance ...

  runs the module as ``__main__`` with the log started and, when the process exits
  normally (``publish`` does on SIGTERM), writes every pass to ``OUT.json`` as
  ``[wall ms at its start, generation, duration ms, objects collected]``.

A pass's duration is the wall time between the callback's ``start`` and ``stop``
(``gc.callbacks``): the time the process's thread spent in the collector.
"""

from __future__ import annotations

import atexit
import gc
import runpy
import sys
import time

import orjson

#: one pass: (wall ms at its start, generation, duration ms, objects collected)
Pass = tuple[float, int, float, int]


class GcLog:
    """Every pass of the collector since :meth:`start`."""

    def __init__(self) -> None:
        self.passes: list[Pass] = []
        self._wall = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._wall = time.time() * 1000
            self._started = time.perf_counter()
        else:
            spent = (time.perf_counter() - self._started) * 1e3
            self.passes.append((self._wall, info["generation"], spent, info["collected"]))

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def clear(self) -> None:
        self.passes.clear()

    async def __aenter__(self) -> GcLog:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.stop()

    def summary(self, since_ms: float = 0.0, until_ms: float = float("inf")) -> str:
        return summarize([p for p in self.passes if since_ms <= p[0] <= until_ms])


def summarize(passes: list[Pass] | list[list[float]]) -> str:
    """``gen0 N (max ms), gen1 N (max), gen2 N (each ms...)``, and the total pause."""
    parts = []
    for gen in (0, 1, 2):
        spent = [float(p[2]) for p in passes if int(p[1]) == gen]
        if gen == 2:
            each = ", ".join(f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}" for ms in spent)
            parts.append(f"gen2 {len(spent)}" + (f" ({each} ms)" if spent else ""))
        else:
            parts.append(f"gen{gen} {len(spent)} (max {max(spent, default=0.0):.1f} ms)")
    total = sum(float(p[2]) for p in passes)
    return ", ".join(parts) + f"; in the collector {total:.0f} ms"


def tracked_census(top: int = 4) -> str:
    """How many objects the collector tracks, and the most numerous types among them."""
    counts: dict[str, int] = {}
    objects = gc.get_objects()
    for obj in objects:
        name = type(obj).__name__
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return f"{len(objects):,} tracked (" + ", ".join(f"{n} {c:,}" for n, c in ranked) + ")"


def _run_logged(out: str, module: str, args: list[str]) -> None:
    log = GcLog()
    log.start()

    def dump() -> None:
        with open(out, "wb") as f:
            f.write(orjson.dumps(log.passes))

    atexit.register(dump)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit("usage: _gclog.py OUT.json -m MODULE [ARGS...]")
    _run_logged(sys.argv[1], sys.argv[3], sys.argv[4:])
