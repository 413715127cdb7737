"""Account (private) feeds: one-pass typed decoding against today's orjson + dict parsing.

Run::

    .venv/bin/python benchmarks/bench_decode_account.py --number 2000 --repeat 30

Per account event type of the three venues (Binance Spot user data over the WebSocket
API, Binance USD-M user data, Bybit v5 private topics), bytes → the models the account
stream emits, three ways, on the same frame:

* **today**: ``orjson.loads`` of the frame, then the venue's dict parser
  (``user_stream.parse_user_event``, ``futures_user_stream.parse_futures_user_event`` /
  ``parse_trade_lite``, ``bybit.private.parse_*``), as ``AccountRun._on_frame`` and the
  session do it;
* **typed**: ``orjson.loads`` of the frame as well - the account stream emits every
  event decoded (``raw_events``, ``events``) and the rotation de-dupe fingerprints it,
  so this decode stays - then the typed reader of the event kind
  (``benchmarks/_wire_spot.py``, ``_wire_usdm.py``, ``_wire_bybit.py``:
  one ``msgspec`` pass into Structs of the fields the dict parser reads, numbers to
  ``Decimal`` in C, the same finite-number checks and the same model constructors);
  this is what adopting it costs per frame;
* **dict parser alone** / **reader alone**: the dict parser on the already decoded event
  against the typed reader on the bytes, without the ``orjson.loads`` both paths share:
  what a stream that did not need the decoded event would gain (second ``ratio``).

``ratio`` is today's time over typed's (above 1: typed faster); all four paths are timed
one after the other in every round (best of ``--repeat`` rounds of ``--number`` calls,
process CPU time, so the time the loaded machine spends on other jobs is left out).
Every case asserts that the typed reader's models equal the dict parser's.

Frames: the documented examples of ``/work/shared/reference/examples.json`` (keys
printed; ``--examples PATH`` to point elsewhere) and frames shaped as the simulator
writes them (written here with the key sets of frames captured from a simulator run
through the Connector; ``rxconnector/testing/simulator/binance_wsapi.py``
``execution_report``,
``binance_futures_user.py`` ``_order_update`` / ``_trade_lite`` / ``_account_update``,
``bybit_private.py`` / ``bybit_rows.py``). The shared examples.json has no USD-M user
data; the repository's ``tests/fixtures/examples.json`` (``--fixtures``) has the
documented ``ORDER_TRADE_UPDATE`` and recorded ``ORDER_TRADE_UPDATE`` / ``TRADE_LITE``
/ ``ACCOUNT_UPDATE`` payloads, measured as well.

Last, the dict path of a fill before and after it stopped parsing the fill twice
(``parse_execution_report`` + ``parse_execution``, as ``parse_user_event`` did until
this session, against today's ``parse_user_event``; USD-M likewise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _wire_bybit as private_wire
import _wire_spot as user_wire
import _wire_usdm as futures_user_wire
from _account_wire import all_sane

from rxconnector.exchanges._parsing import to_decimal
from rxconnector.exchanges.binance.futures_user_stream import (
    parse_futures_user_event,
    parse_order_execution,
    parse_order_trade_update,
    parse_trade_lite,
)
from rxconnector.exchanges.binance.user_stream import (
    parse_execution,
    parse_execution_report,
    parse_user_event,
)
from rxconnector.exchanges.bybit.private import (
    parse_executions,
    parse_orders,
    parse_positions,
    parse_wallet,
)
from rxconnector.models import OrderUpdate

EXAMPLES = Path("/work/shared/reference/examples.json")
#: The repository's copy of the examples, which adds USD-M user data (documented and
#: recorded payloads, sources in ``examples_sources.json``).
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "examples.json"

Case = tuple[str, bytes, Callable[[], Any], Callable[[], Any], Callable[[], Any], Callable[[], Any]]

# --------------------------------------------------------------------------- frames


def _spot_fill(event: dict[str, Any]) -> dict[str, Any]:
    """The documented NEW report turned into a partial fill (same keys)."""
    return {**event, "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.50000000",
            "z": "0.50000000", "L": "0.10264410", "n": "0.00005000", "N": "BNB",
            "t": 12345, "Z": "0.05132205", "Y": "0.05132205", "m": True}  # fmt: skip


def sim_spot_trade() -> dict[str, Any]:
    """``binance_wsapi.execution_report`` of a fill (keys and value shapes)."""
    return {"subscriptionId": 0, "event": {
        "e": "executionReport", "E": 1700000000123, "s": "BTCUSDT", "c": "rx-7f3a9c",
        "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.01000000", "p": "30000.00000000",
        "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "TRADE",
        "X": "FILLED", "r": "NONE", "i": 41, "l": "0.01000000", "z": "0.01000000",
        "L": "30000.00000000", "n": "0.00001000", "N": "BTC", "T": 1700000000123,
        "t": 9001, "I": 77, "w": False, "m": False, "M": False, "O": 1700000000001,
        "Z": "300.00000000", "Y": "300.00000000", "Q": "0.00000000", "W": 1700000000001,
        "V": "NONE"}}  # fmt: skip


def sim_spot_position() -> dict[str, Any]:
    return {"subscriptionId": 0, "event": {
        "e": "outboundAccountPosition", "E": 1700000000123, "u": 1700000000123,
        "B": [{"a": "BTC", "f": "1.01000000", "l": "0.00000000"},
              {"a": "USDT", "f": "9700.00000000", "l": "0.00000000"}]}}  # fmt: skip


def _usdm_order(execution: str, fill: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "s": "BTCUSDT", "c": "rx-1b2c", "S": "SELL", "o": "LIMIT", "f": "GTC",
        "q": "0.010", "p": "30000.00", "ap": "30000.00" if fill else "0", "sp": "0",
        "x": execution, "X": "FILLED" if fill else "NEW", "i": 8886774,
        "l": "0.010" if fill else "0", "z": "0.010" if fill else "0",
        "L": "30000.00" if fill else "0", "T": 1700000000123, "t": 555 if fill else 0,
        "b": "0", "a": "0", "m": fill, "R": False, "wt": "CONTRACT_PRICE", "ot": "LIMIT",
        "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE",
        "pm": "NONE", "gtd": 0}  # fmt: skip
    if fill:
        body["N"], body["n"] = "USDT", "0.12000000"
    return {"e": "ORDER_TRADE_UPDATE", "E": 1700000000123, "T": 1700000000123, "o": body}


def sim_usdm_trade_lite() -> dict[str, Any]:
    return {"e": "TRADE_LITE", "E": 1700000000123, "T": 1700000000120, "s": "BTCUSDT",
            "q": "0.010", "p": "30000.00", "m": False, "c": "rx-1b2c", "S": "SELL",
            "L": "30000.00", "l": "0.010", "t": 555, "i": 8886774}  # fmt: skip


def sim_usdm_account_update() -> dict[str, Any]:
    return {"e": "ACCOUNT_UPDATE", "E": 1700000000123, "T": 1700000000123, "a": {
        "m": "ORDER",
        "B": [{"a": "USDT", "wb": "9999.88000000", "cw": "9999.88000000", "bc": "0"}],
        "P": [{"s": "BTCUSDT", "pa": "-0.010", "ep": "30000.00", "bep": "30000.00",
               "cr": "0", "up": "-0.05000000", "mt": "cross", "iw": "0", "ps": "BOTH",
               "ma": "USDT"}]}}  # fmt: skip


def sim_bybit_order() -> dict[str, Any]:
    """``bybit_private._order_row`` (``bybit_rows.bybit_order_row`` without
    ``isLeverage``, plus the topic's own fields) of a partly filled limit order."""
    row = {"orderId": "1700000000000041", "orderLinkId": "rx-77", "blockTradeId": "",
           "symbol": "BTCUSDT", "price": "30000.0", "qty": "0.020", "side": "Buy",
           "positionIdx": 0, "orderStatus": "PartiallyFilled",
           "cancelType": "UNKNOWN", "rejectReason": "EC_NoError", "avgPrice": "30000",
           "leavesQty": "0.010", "leavesValue": "300", "cumExecQty": "0.010",
           "cumExecValue": "300", "cumExecFee": "0.165", "timeInForce": "GTC",
           "orderType": "Limit", "stopOrderType": "", "orderIv": "", "triggerPrice": "0",
           "takeProfit": "0", "stopLoss": "0", "tpTriggerBy": "", "slTriggerBy": "",
           "triggerDirection": 0, "triggerBy": "", "lastPriceOnCreated": "",
           "reduceOnly": False, "closeOnTrigger": False, "smpType": "None", "smpGroup": 0,
           "smpOrderId": "", "tpslMode": "", "tpLimitPrice": "", "slLimitPrice": "",
           "placeType": "", "createdTime": "1700000000001", "updatedTime": "1700000000123",
           "closedPnl": "0", "category": "linear", "feeCurrency": "USDT",
           "cumFeeDetail": {"USDT": "0.165"}, "rpiTakerAccess": False,
           "rpiMatchedQty": "0"}  # fmt: skip
    return {"id": "sim-1", "topic": "order", "creationTime": 1700000000123, "data": [row]}


def sim_bybit_execution() -> dict[str, Any]:
    row = {"category": "linear", "symbol": "BTCUSDT", "closedSize": "", "execFee": "0.165",
           "execId": "9001", "execPrice": "30000.0", "execQty": "0.010",
           "execType": "Trade", "execValue": "300", "feeRate": "0.00055", "tradeIv": "",
           "markIv": "", "blockTradeId": "", "markPrice": "30000.5", "indexPrice": "",
           "underlyingPrice": "", "leavesQty": "0.010", "orderId": "1700000000000041",
           "orderLinkId": "rx-77", "orderPrice": "30000.0", "orderQty": "0.020",
           "orderType": "Limit", "stopOrderType": "UNKNOWN", "side": "Buy",
           "execTime": "1700000000123", "isLeverage": "0", "isMaker": True, "seq": 42,
           "marketUnit": "", "execPnl": "0", "createType": "CreateByUser",
           "extraFees": [], "feeCurrency": "USDT"}  # fmt: skip
    return {"id": "sim-2", "topic": "execution", "creationTime": 1700000000123,
            "data": [row]}  # fmt: skip


def sim_bybit_wallet() -> dict[str, Any]:
    def coin(asset: str, wallet: str) -> dict[str, Any]:
        return {"coin": asset, "equity": wallet, "usdValue": wallet, "walletBalance": wallet,
                "availableToWithdraw": wallet, "availableToBorrow": "", "borrowAmount": "0",
                "accruedInterest": "0", "totalOrderIM": "0", "totalPositionIM": "0",
                "totalPositionMM": "0", "unrealisedPnl": "0", "cumRealisedPnl": "0",
                "bonus": "0", "collateralSwitch": True, "marginCollateral": True,
                "locked": "0", "spotHedgingQty": "0", "spotBorrow": "0"}  # fmt: skip

    account = {"accountIMRate": "0", "accountIMRateByMp": "0", "accountMMRate": "0",
               "accountMMRateByMp": "0", "totalEquity": "10300", "totalWalletBalance": "10300",
               "totalMarginBalance": "10300", "totalAvailableBalance": "10300",
               "totalPerpUPL": "0", "totalInitialMargin": "0", "totalInitialMarginByMp": "0",
               "totalMaintenanceMargin": "0", "totalMaintenanceMarginByMp": "0",
               "coin": [coin("BTC", "0.01"), coin("USDT", "10000")], "accountLTV": "0",
               "accountType": "UNIFIED"}  # fmt: skip
    return {"id": "sim-3", "topic": "wallet", "creationTime": 1700000000123, "data": [account]}


def sim_bybit_position() -> dict[str, Any]:
    row = {"positionIdx": 0, "tradeMode": 0, "riskId": 1, "riskLimitValue": "2000000",
           "symbol": "BTCUSDT", "side": "Buy", "size": "0.010", "entryPrice": "30000",
           "leverage": "10", "breakEvenPrice": "30000", "positionValue": "300",
           "positionBalance": "30", "markPrice": "30000.5", "positionIM": "30",
           "positionIMByMp": "30", "positionMM": "15", "positionMMByMp": "15",
           "takeProfit": "0", "stopLoss": "0", "trailingStop": "0", "unrealisedPnl": "0.005",
           "curRealisedPnl": "0", "cumRealisedPnl": "0", "sessionAvgPrice": "0",
           "createdTime": "1700000000001", "updatedTime": "1700000000123",
           "tpslMode": "Full", "liqPrice": "27150.2", "bustPrice": "", "category": "linear",
           "positionStatus": "Normal", "adlRankIndicator": 2, "autoAddMargin": 0,
           "leverageSysUpdatedTime": "", "mmrSysUpdatedTime": "", "seq": 43,
           "isReduceOnly": False}  # fmt: skip
    return {"id": "sim-4", "topic": "position", "creationTime": 1700000000123, "data": [row]}


# --------------------------------------------------------------------------- the paths


def spot_case(name: str, message: dict[str, Any]) -> Case:
    frame = orjson.dumps(message)
    kind = message["event"]["e"]
    read = user_wire.READERS[kind]

    def today() -> Any:
        return parse_user_event(orjson.loads(frame)["event"], 1.0)

    def typed() -> Any:
        decoded = orjson.loads(frame)
        return user_wire.READERS[decoded["event"]["e"]](frame, 1.0)

    event = orjson.loads(frame)["event"]
    return name, frame, today, typed, lambda: read(frame, 1.0), lambda: parse_user_event(event, 1.0)


def usdm_case(name: str, message: dict[str, Any]) -> Case:
    frame = orjson.dumps(message)
    kind = message["e"]
    read = futures_user_wire.READERS[kind]
    parse = (lambda m: [parse_trade_lite(m, 1.0)]) if kind == "TRADE_LITE" else (
        lambda m: parse_futures_user_event(m, 1.0))  # fmt: skip

    def today() -> Any:
        return parse(orjson.loads(frame))

    def typed() -> Any:
        decoded = orjson.loads(frame)
        return futures_user_wire.READERS[decoded["e"]](frame, 1.0)

    decoded = orjson.loads(frame)
    return name, frame, today, typed, lambda: read(frame, 1.0), lambda: parse(decoded)


_BYBIT_PARSERS: dict[str, Callable[[Any, float], Any]] = {
    "order": parse_orders,
    "execution": parse_executions,
    "wallet": parse_wallet,
    "position": parse_positions,
}


def bybit_case(name: str, message: dict[str, Any]) -> Case:
    frame = orjson.dumps(message)
    family = message["topic"].split(".", 1)[0]
    parse, read = _BYBIT_PARSERS[family], private_wire.READERS[family]

    def today() -> Any:
        decoded = orjson.loads(frame)
        return _BYBIT_PARSERS[decoded["topic"].split(".", 1)[0]](decoded, 1.0)

    def typed() -> Any:
        decoded = orjson.loads(frame)
        return private_wire.READERS[decoded["topic"].split(".", 1)[0]](frame, 1.0)

    decoded = orjson.loads(frame)
    return name, frame, today, typed, lambda: read(frame, 1.0), lambda: parse(decoded, 1.0)


def cases(examples: dict[str, Any], fixtures: dict[str, Any]) -> list[Case]:
    execution_report = examples["binance.spot.uds.executionReport"]
    position = examples["binance.spot.uds.outboundAccountPosition"]
    usdm = "binance.usdm.uds"
    fill = {**execution_report, "event": _spot_fill(execution_report["event"])}
    return [
        spot_case("spot executionReport NEW [ex]", execution_report),
        spot_case("spot executionReport TRADE [ex*]", fill),
        spot_case("spot executionReport TRADE [sim]", sim_spot_trade()),
        spot_case("spot outboundAccountPos [ex]", position),
        spot_case("spot outboundAccountPos [sim]", sim_spot_position()),
        spot_case("spot balanceUpdate [ex]", examples["binance.spot.uds.balanceUpdate"]),
        spot_case("spot externalLockUpdate [ex]", examples["binance.spot.uds.externalLockUpdate"]),
        usdm_case("usdm ORDER_TRADE_UPDATE NEW [fx]", fixtures[f"{usdm}.ORDER_TRADE_UPDATE"]),
        usdm_case("usdm ORDER_TRADE_UPDATE NEW [rec]",
                  fixtures[f"{usdm}.ORDER_TRADE_UPDATE.recorded"]),
        usdm_case("usdm ORDER_TRADE_UPDATE NEW [sim]", _usdm_order("NEW", fill=False)),
        usdm_case("usdm ORDER_TRADE_UPDATE TRADE [sim]", _usdm_order("TRADE", fill=True)),
        usdm_case("usdm TRADE_LITE [rec]", fixtures[f"{usdm}.TRADE_LITE.recorded"]),
        usdm_case("usdm TRADE_LITE [sim]", sim_usdm_trade_lite()),
        usdm_case("usdm ACCOUNT_UPDATE [rec]", fixtures[f"{usdm}.ACCOUNT_UPDATE.recorded"]),
        usdm_case("usdm ACCOUNT_UPDATE [sim]", sim_usdm_account_update()),
        bybit_case("bybit order [ex]", examples["bybit.v5.ws.private.order"]),
        bybit_case("bybit order [sim]", sim_bybit_order()),
        bybit_case("bybit execution [ex]", examples["bybit.v5.ws.private.execution"]),
        bybit_case("bybit execution [sim]", sim_bybit_execution()),
        bybit_case("bybit wallet [ex]", examples["bybit.v5.ws.private.wallet"]),
        bybit_case("bybit wallet [sim]", sim_bybit_wallet()),
        bybit_case("bybit position [ex]", examples["bybit.v5.ws.private.position"]),
        bybit_case("bybit position [sim]", sim_bybit_position()),
    ]  # fmt: skip


EXAMPLE_KEYS = (
    "binance.spot.uds.executionReport",
    "binance.spot.uds.outboundAccountPosition",
    "binance.spot.uds.balanceUpdate",
    "binance.spot.uds.externalLockUpdate",
    "bybit.v5.ws.private.order",
    "bybit.v5.ws.private.execution",
    "bybit.v5.ws.private.wallet",
    "bybit.v5.ws.private.position",
)
FIXTURE_KEYS = (
    "binance.usdm.uds.ORDER_TRADE_UPDATE",
    "binance.usdm.uds.ORDER_TRADE_UPDATE.recorded",
    "binance.usdm.uds.TRADE_LITE.recorded",
    "binance.usdm.uds.ACCOUNT_UPDATE.recorded",
)


def _best_interleaved(paths: list[Callable[[], Any]], number: int, repeat: int) -> list[float]:
    """Best CPU time (``time.process_time``: time this process was descheduled by the
    other engineers' jobs does not count) of each path over ``repeat`` rounds, all timed
    one after the other in every round: a slow spell then hits every path, not one."""
    best = [float("inf")] * len(paths)
    for _ in range(repeat):
        for i, path in enumerate(paths):
            timer = timeit.Timer(path, timer=time.process_time)
            best[i] = min(best[i], timer.timeit(number=number))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args()
    examples = json.loads(args.examples.read_text())
    fixtures = json.loads(args.fixtures.read_text())
    print(f"load: {os.getloadavg()}; best of {args.repeat} x {args.number}, alternated")
    print("examples.json keys: " + ", ".join(EXAMPLE_KEYS))
    print("tests/fixtures/examples.json keys: " + ", ".join(FIXTURE_KEYS))
    print("[ex] documented example, [ex*] the documented executionReport made a fill, "
          "[fx] documented (tests/fixtures), [rec] recorded (tests/fixtures), "
          "[sim] simulator-shaped")  # fmt: skip
    print(f"  {'event (frame bytes)':42s} {'today µs':>9s} {'typed µs':>9s} {'ratio':>6s} "
          f"{'dict parser alone':>18s} {'reader alone':>13s} {'ratio':>6s}")  # fmt: skip
    for name, frame, today, typed, alone, parser in cases(examples, fixtures):
        want, got = today(), typed()
        assert got is not None, f"{name}: the typed reader refused a valid frame"
        assert list(want) == list(got), f"{name}: models differ\n{want}\n{got}"
        t_today, t_typed, t_alone, t_parser = _best_interleaved(
            [today, typed, alone, parser], args.number, args.repeat
        )
        per = 1e6 / args.number
        print(f"  {name + f' ({len(frame)})':42s} {t_today * per:9.2f} {t_typed * per:9.2f} "
              f"{t_today / t_typed:6.2f} {t_parser * per:18.2f} {t_alone * per:13.2f} "
              f"{t_parser / t_alone:6.2f}")  # fmt: skip
    breakdown(args.number, args.repeat)
    fills_before_after(examples, args.number, args.repeat)


def breakdown(number: int, repeat: int) -> None:
    """Where a Spot fill's time goes on each path (the same frame, the same rounds)."""
    frame = orjson.dumps(sim_spot_trade())
    event = orjson.loads(frame)["event"]
    decode = user_wire._decode_report
    convert, schema = msgspec.convert, user_wire.ExecutionReportData
    data = decode(frame).event
    update, fill = parse_user_event(event, 1.0)
    numbers = [event[k] for k in ("p", "q", "z", "Z", "L", "l", "n")]
    fields = {f: getattr(update, f) for f in attrs.fields_dict(OrderUpdate)}
    paths: list[tuple[str, Callable[[], Any]]] = [
        ("orjson.loads of the frame (both paths)", lambda: orjson.loads(frame)),
        ("msgspec decode into the Struct (typed)", lambda: decode(frame)),
        ("msgspec.convert of the decoded event instead", lambda: convert(event, schema)),
        ("7 x to_decimal (dict parser)", lambda: [to_decimal(n) for n in numbers]),
        ("all_sane of the 7 Decimals (typed)", lambda: all_sane(
            (data.p, data.q, data.z, data.Z, data.L, data.l, data.n))),
        ("OrderUpdate(**17 fields) (both)", lambda: OrderUpdate(**fields)),
        ("parse_execution_report (dict)", lambda: parse_execution_report(event, 1.0)),
        ("parse_execution (dict)", lambda: parse_execution(event, 1.0)),
    ]  # fmt: skip
    assert fill is not None
    best = _best_interleaved([path for _name, path in paths], number, repeat)
    print("  where a Spot fill's time goes (executionReport TRADE [sim]):")
    for (name, _path), seconds in zip(paths, best, strict=True):
        print(f"    {name:44s} {seconds / number * 1e6:6.2f} µs")


def _spot_two_parses(event: Any) -> list[Any]:
    """``parse_user_event`` of an executionReport as it was: the fill parsed again."""
    update, fill = parse_execution_report(event, 1.0), parse_execution(event, 1.0)
    return [update] if fill is None else [update, fill]


def _usdm_two_parses(event: Any) -> list[Any]:
    update, fill = parse_order_trade_update(event, 1.0), parse_order_execution(event, 1.0)
    return [update] if fill is None else [update, fill]


def fills_before_after(examples: dict[str, Any], number: int, repeat: int) -> None:
    """The dict path of a fill: parsed twice (before) and once (now), same frames."""
    report = examples["binance.spot.uds.executionReport"]
    fill = {**report, "event": _spot_fill(report["event"])}
    spot = [("spot executionReport TRADE [ex*]", fill), ("spot executionReport TRADE [sim]",
             sim_spot_trade())]  # fmt: skip
    print("  dict path of a fill (orjson.loads + parser): before (fill parsed twice) / now")
    for name, message in spot:
        frame = orjson.dumps(message)

        def before(frame: bytes = frame) -> Any:
            return _spot_two_parses(orjson.loads(frame)["event"])

        def now(frame: bytes = frame) -> Any:
            return parse_user_event(orjson.loads(frame)["event"], 1.0)

        _print_before_after(name, before, now, number, repeat)
    frame = orjson.dumps(_usdm_order("TRADE", fill=True))
    _print_before_after(
        "usdm ORDER_TRADE_UPDATE TRADE [sim]",
        lambda: _usdm_two_parses(orjson.loads(frame)),
        lambda: parse_futures_user_event(orjson.loads(frame), 1.0),
        number,
        repeat,
    )


def _print_before_after(
    name: str, before: Callable[[], Any], now: Callable[[], Any], number: int, repeat: int
) -> None:
    assert before() == now(), name
    t_before, t_now = _best_interleaved([before, now], number, repeat)
    per = 1e6 / number
    print(f"    {name:42s} {t_before * per:6.2f} -> {t_now * per:6.2f} µs "
          f"({t_before / t_now:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
