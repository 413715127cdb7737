"""CPU the paced exchange simulator spends per trade while serving ``@trade`` streams.

Run::

    .venv/bin/python benchmarks/bench_sim_cpu.py                       # 10,000/s, 3 runs
    .venv/bin/python benchmarks/bench_sim_cpu.py --against /tmp/before  # alternate two trees

Starts ``_pacedsim.py`` (the simulator of ``bench_bus_paced``, collector off while
pacing) as a child process, subscribes one plain aiohttp client in this process to the
``@trade`` stream of every symbol (one combined connection, what ``rxconnector publish``
opens), paces RATE trades/s for SECONDS and prints the child's CPU time (schedstat: on
a CPU, kernel work of its socket writes included) per produced trade, with the
simulator's own step figures. ``--against DIR`` runs the same child from another source
tree (``git archive`` of an older commit) alternately with this one, so both see the
same machine; the 1-minute load is printed with every run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from typing import Any

import aiohttp
import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _on_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def _line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    reply: dict[str, Any] = orjson.loads(proc.stdout.readline())
    return reply


def _spawn(tree: str, symbols: int) -> subprocess.Popen[str]:
    """``_pacedsim.py`` of ``tree``, importing that tree's package and nothing else first."""
    script = os.path.join(tree, "benchmarks", "_pacedsim.py")
    return subprocess.Popen(
        [sys.executable, script, "--symbols", str(symbols), "--quiet-gc"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=tree),
        text=True,
        cwd=tree,
    )


async def one_run(tree: str, rate: float, seconds: float, symbols: int) -> dict[str, Any]:
    """One paced window of the simulator from ``tree``; its CPU per trade and steps."""
    proc = _spawn(tree, symbols)
    assert proc.stdin is not None
    loop = asyncio.get_running_loop()
    try:
        urls = await loop.run_in_executor(None, _line, proc)
        names = "/".join(f"s{i}usdt@trade" for i in range(symbols))
        received = [0]
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{urls['ws']}/stream?streams={names}", max_msg_size=0) as ws,
        ):

            async def read() -> None:
                async for _msg in ws:
                    received[0] += 1

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.5)
            load = os.getloadavg()[0]
            cpu_before = _on_cpu_seconds(proc.pid)
            proc.stdin.write(f"go {rate}\n")
            proc.stdin.flush()
            await asyncio.sleep(seconds)
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            reply = await loop.run_in_executor(None, _line, proc)
            cpu = _on_cpu_seconds(proc.pid) - cpu_before
            await asyncio.sleep(0.3)
            reader.cancel()
        trades = int(reply["trades"])
        return {
            "load": load,
            "trades": trades,
            "rate": trades / float(reply["seconds"]),
            "received": received[0],
            "cpu_us": 1e6 * cpu / max(1, trades),
            "sent_lag": reply["sent_lag"],
            "steps": reply["steps"],
        }
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--against", default="", help="another source tree, run alternately")
    args = parser.parse_args()
    trees = [("this", ROOT)] + ([("other", os.path.abspath(args.against))] if args.against else [])
    for run in range(args.runs):
        for label, tree in trees if run % 2 == 0 else trees[::-1]:
            r = asyncio.run(one_run(tree, args.rate, args.seconds, args.symbols))
            print(
                f"{label:5} run {run + 1}: load {r['load']:.2f}  {r['rate']:,.0f} trades/s "
                f"(received {r['received']:,} of {r['trades']:,})  simulator CPU "
                f"{r['cpu_us']:.1f} us/trade  tick -> sockets {r['sent_lag']}  {r['steps']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
