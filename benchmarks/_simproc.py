"""The exchange simulator in a child process, driven over stdin/stdout JSON lines.

Used by ``bench_recovery.py`` and ``soak.py``: the client under test must not share an
event loop (or a core's worth of GIL time) with the exchange it measures. The child
prints ``{"rest_url", "ws_url"}`` once started, then answers one JSON line per command:

* ``{"cmd": "fault", "name": ...}``: injects the fault; once it is over and the client
  has every stream subscribed again, answers the *marks*: per symbol the book's update
  id, the last trade id and the server time, so the client can tell when it has caught
  up with what the exchange had at that moment;
* ``{"cmd": "rest", "since": i}``: REST requests answered since log index ``i``
  (count, weight, statuses, the highest weight used in any minute);
* ``{"cmd": "tape", "symbol": s, "from": a, "to": b}``: whether the exchange still
  serves trade ids ``a``..``b`` (they are inside its kept history);
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from typing import Any

import attrs
import orjson

from rxconnector.testing import ExchangeSimulator
from rxconnector.testing.simulator.config import symbol_spec

FAULTS = ("disconnect", "stall5", "disconnect_429", "ban418", "shutdown", "none")


def symbols_for(n: int) -> list[str]:
    return [f"S{i:04d}USDT" for i in range(n)]


async def _resubscribed(sim: ExchangeSimulator, streams: int, within: float = 120.0) -> None:
    """Wait until the client has every stream subscribed again (or ``within`` passed)."""
    deadline = asyncio.get_running_loop().time() + within
    loop = asyncio.get_running_loop()
    while len(sim.active_streams()) < streams and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _fault(sim: ExchangeSimulator, name: str) -> None:
    streams = len(sim.active_streams())
    await _inject(sim, name)
    await _resubscribed(sim, streams)


async def _inject(sim: ExchangeSimulator, name: str) -> None:
    if name == "disconnect":
        await sim.drop_connections()
    elif name == "stall5":
        sim.stall(5.0)
        await asyncio.sleep(5.0)
    elif name == "disconnect_429":
        await sim.drop_connections()
        sim.fail_rest(429, count=1, retry_after=1)
    elif name == "ban418":
        await sim.drop_connections()
        sim.fail_rest(418, count=1, retry_after=1)
    elif name == "shutdown":
        await sim.server_shutdown()
    elif name != "none":
        raise ValueError(name)


def _marks(sim: ExchangeSimulator, symbols: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"server_time": sim.server_time_ms(), "symbols": {}}
    for s in symbols:
        tape = sim.trades(s)
        out["symbols"][s] = {
            "update_id": sim.current_update_id(s),
            "trade_id": tape[-1].id if tape else 0,
        }
    return out


def _rest(sim: ExchangeSimulator, since: int) -> dict[str, Any]:
    log = sim.rest_log[since:]
    statuses: collections.Counter[int] = collections.Counter(r.status for r in log)
    paths: collections.Counter[str] = collections.Counter(r.path for r in log)
    weight = sum(r.weight for r in log)
    # when the weight went: per whole second after the first call, per path
    timeline: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in log:
        timeline[int(r.at - log[0].at)][r.path.rsplit("/", 1)[-1]] += r.weight
    return {
        "timeline": {str(k): dict(v) for k, v in sorted(timeline.items())},
        "index": len(sim.rest_log),
        "calls": len(log),
        "weight": weight,
        "statuses": {str(k): v for k, v in statuses.items()},
        "paths": dict(paths),
        "max_minute_weight": _PEAK[0],
        "used": sim.rest_weight_used(),
        "server_time": sim.server_time_ms(),
        "limit": sim._spot_rest.limiter.limit,
    }


#: Highest ``X-MBX-USED-WEIGHT-1M`` seen by the sampler (the simulator's own count).
_PEAK = [0]


async def _sample_weight(sim: ExchangeSimulator) -> None:
    while True:
        _PEAK[0] = max(_PEAK[0], sim.rest_weight_used())
        await asyncio.sleep(0.02)


def _tape(sim: ExchangeSimulator, symbol: str, first: int, last: int) -> dict[str, Any]:
    tape = sim.trades(symbol)
    oldest = tape[0].id if tape else 0
    return {"served": bool(tape) and first >= oldest, "oldest": oldest}


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--weight-limit", type=int, default=None)
    parser.add_argument("--fill-model", default="binance_spot")
    parser.add_argument("--quiet", type=int, default=0, help="the last N symbols are quiet")
    parser.add_argument("--quiet-activity", type=float, default=0.03)
    parser.add_argument("--quiet-fill-model", default="binance_spot_quiet")
    args = parser.parse_args(argv)
    symbols = symbols_for(args.symbols)
    extra: dict[str, Any] = {"fill_model": args.fill_model}
    if args.weight_limit is not None:
        extra["weight_limit"] = args.weight_limit
    specs = [symbol_spec(s, 7) for s in symbols]
    quiet_from = len(specs) - args.quiet
    specs = [
        attrs.evolve(spec, activity=args.quiet_activity, fill_model=args.quiet_fill_model)
        if i >= quiet_from
        else spec
        for i, spec in enumerate(specs)
    ]
    async with ExchangeSimulator(seed=7, symbols=tuple(specs), **extra) as sim:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        def say(obj: Any) -> None:
            sys.stdout.write(orjson.dumps(obj).decode() + "\n")
            sys.stdout.flush()

        sampler = loop.create_task(_sample_weight(sim))
        say({"rest_url": sim.rest_url, "ws_url": sim.ws_url})
        while True:
            line = await reader.readline()
            if not line:
                sampler.cancel()
                return
            cmd = orjson.loads(line)
            if cmd["cmd"] == "quit":
                sampler.cancel()
                say({"ok": True})
                return
            if cmd["cmd"] == "fault":
                await _fault(sim, cmd["name"])
                say(_marks(sim, symbols))
            elif cmd["cmd"] == "inject":  # the soak: no waiting for the client
                await _inject(sim, cmd["name"])
                say({"ok": True})
            elif cmd["cmd"] == "rest":
                say(_rest(sim, int(cmd["since"])))
            elif cmd["cmd"] == "tape":
                say(_tape(sim, cmd["symbol"], int(cmd["from"]), int(cmd["to"])))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
