"""The bus's parts on their own, against a real redis-server where Redis is involved:
entry codec, fencing scripts, prompt stop in a blocking read, heartbeat staleness in
virtual time, the RemoteConnector/Connector signature parity, back-pressure."""

from __future__ import annotations

import asyncio
import inspect
import time
import typing
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest
from reactivex.testing import TestScheduler
from redis import asyncio as aioredis
from redis.exceptions import ResponseError

import rxconnector as rxc
from rxconnector.bus import (
    FeedTarget,
    Publisher,
    RemoteConnector,
    decode_entry,
    encode_gap,
    encode_model,
)
from rxconnector.bus._timing import backoff_delay, sleep_on
from rxconnector.bus.codec import FEED_TYPES, decode_fields, encode_record, pack_batch, record_of
from rxconnector.bus.fencing import ACQUIRE_OR_RENEW, FENCED_APPEND, FENCED_APPEND_MANY
from rxconnector.bus.heartbeat import STALE_FACTOR, HeartbeatTracker
from rxconnector.testing.simulator import ExchangeSimulator

from .conftest import RedisServer
from .helpers import SYMBOL, TRADES_KEY, assert_tape, stream_trades, until

D = Decimal


def _fields(parts: tuple[str, str, bytes, str]) -> dict[str, Any]:
    kind, seq, data, ts = parts
    return {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts}


class TestCodec:
    MODELS: typing.ClassVar[list[object]] = [
        rxc.Trade("BTCUSDT", 7, D("65000.10"), D("0.00100000"), "sell", 1, 2, 3.25,
                  first_trade_id=5, last_trade_id=7, backfilled=True),
        rxc.OrderBook("BTCUSDT", ((D("1.10"), D("2")),), ((D("1.20"), D("0.5")),), 9, 8, 7.5),
        rxc.Ticker("BTCUSDT", D("1"), None, None, D("2"), D("3"), D("1"), D("2"), D("0.5"),
                   D("10"), D("100"), 5),
        rxc.BookTicker("ETHUSDT", D("1"), D("2"), D("3"), D("4"), 11, 12),
        rxc.Kline("BTCUSDT", "1m", 0, 59_999, D("1"), D("2"), D("0.5"), D("1.5"), D("3"),
                  D("4"), 5, True, 6),
        rxc.MarkPrice("BTCUSDT", D("1"), None, D("2"), D("-0.0001"), 3, 4),
        # a Bybit linear trade id: a UUID as a 128-bit int (travels as a string)
        rxc.Trade("BTCUSDT", 2**127 + 5, D("1"), D("2"), "buy", 1, 2),
    ]  # fmt: skip

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
    def test_round_trip_is_exact(self, model: object) -> None:
        assert decode_entry("k", _fields(encode_model(model))) == model

    def test_decimals_travel_as_strings(self) -> None:
        data = encode_model(self.MODELS[0])[2]
        assert b'"price":"65000.10"' in data and b'"quantity":"0.00100000"' in data

    def test_gap_marker_becomes_a_feed_gap_error(self) -> None:
        error = decode_entry("rxc:binance:trades:BTCUSDT", _fields(encode_gap("lost", 3, 9)))
        assert isinstance(error, rxc.FeedGapError)
        assert (error.first_missing, error.last_missing) == (3, 9)

    def test_bad_entries_are_parse_errors(self) -> None:
        with pytest.raises(rxc.ParseError):
            decode_entry("k", {"type": "trade", "v": "2", "data": b"{}"})
        with pytest.raises(rxc.ParseError):
            decode_entry("k", {"type": "trade", "v": "1", "data": b"{not json"})
        with pytest.raises(rxc.ParseError):
            decode_entry("k", {"type": "trade", "v": "1", "data": b'{"symbol": "X"}'})
        with pytest.raises(rxc.ParseError):
            decode_entry("k", {"type": "trade", "v": "1", "data": b"[1, 2]"})
        with pytest.raises(rxc.ParseError):
            decode_entry("k", {"type": "nonsense", "v": "1", "data": b"{}"})

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
    def test_flat_fields_as_redis_sends_them_decode_the_same(self, model: object) -> None:
        kind, seq, data, ts = encode_model(model)
        flat = [b"type", kind.encode(), b"v", b"1", b"seq", seq.encode(), b"data", data]
        assert decode_fields("k", [*flat, b"ts", ts.encode()]) == model
        # another writer's layout (fields reordered, one added) takes the mapping path
        other = [b"extra", b"x", b"ts", ts.encode(), *flat[4:], *flat[:4]]
        assert decode_fields("k", other) == model
        with pytest.raises(rxc.ParseError):
            decode_fields("k", [b"type", kind.encode(), b"v", b"2", *flat[4:], b"ts", b"0"])

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
    def test_decoded_models_are_the_frozen_model_class(self, model: object) -> None:
        """Decoding builds through the parsers' cheaper constructor: the object must be
        the very model (same class, frozen, equal hash), on both decoding paths."""
        kind, seq, data, ts = encode_model(model)
        flat = [b"type", kind.encode(), b"v", b"1", b"seq", seq.encode(), b"data", data]
        shuffled = orjson.dumps(dict(reversed(list(orjson.loads(data).items()))))
        by_name = decode_entry("k", {"type": kind, "v": "1", "data": shuffled})
        for decoded in (decode_fields("k", [*flat, b"ts", ts.encode()]), by_name):
            assert type(decoded) is type(model)
            assert decoded == model and hash(decoded) == hash(model)
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                decoded.symbol = "OTHER"  # type: ignore[attr-defined]

    def test_fields_out_of_order_still_decode_by_name(self) -> None:
        trade = self.MODELS[0]
        data = orjson.loads(encode_model(trade)[2])
        shuffled = orjson.dumps(dict(reversed(list(data.items()))))
        assert decode_entry("k", {"type": "trade", "v": "1", "data": shuffled}) == trade

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
    def test_a_record_packs_the_same_values_as_the_entry_parts(self, model: object) -> None:
        packed, seq, ts = encode_record(model, now_ms=12.5)
        parts = encode_model(model, now_ms=12.5)
        assert packed.split(b"\n") == [parts[0].encode(), seq.encode(), parts[2], b"12.5"]
        assert (seq, ts) == (parts[1], 12.5)
        assert record_of(parts) == (packed, seq, ts)

    def test_no_newline_inside_packed_values(self) -> None:
        """pack_batch relies on it: strings with control characters are escaped."""
        gap = encode_gap("line one\nline two\r\x00", 1, 2)
        assert len(pack_batch([record_of(gap)[0], record_of(gap)[0]]).split(b"\n")) == 8

    @pytest.mark.parametrize("data", [b"[1, 2]", b"null", b'"text"', b"[" * 1000 + b"]" * 1000])
    def test_hostile_gap_entries_are_parse_errors(self, data: bytes) -> None:
        """Issue #16: a gap entry whose data is not an object raised AttributeError."""
        with pytest.raises(rxc.ParseError) as info:
            decode_entry("k", {"type": "gap", "v": "1", "data": data})
        assert len(info.value.excerpt) <= 200

    def test_a_deep_gap_reason_is_excerpted(self) -> None:
        raw = b'{"reason": ' + b"[" * 1000 + b"]" * 1000 + b"}"
        error = decode_entry("k", {"type": "gap", "v": "1", "data": raw})
        assert isinstance(error, rxc.FeedGapError) and len(str(error)) < 300


class TestSignatureParity:
    """Code written against a Connector runs unchanged against a RemoteConnector: every
    published feed has the same method name, parameter names, kinds and defaults, and the
    same return annotation; errors and connection_state exist with the same types."""

    @pytest.mark.parametrize("feed", sorted(FEED_TYPES))
    def test_feed_signature_matches_connector(self, feed: str) -> None:
        local = inspect.signature(getattr(rxc.Connector, feed))
        remote = inspect.signature(getattr(RemoteConnector, feed))
        describe = [
            (p.name, p.kind, p.default) for p in local.parameters.values()
        ]  # fmt: skip
        assert [(p.name, p.kind, p.default) for p in remote.parameters.values()] == describe
        assert (
            typing.get_type_hints(getattr(RemoteConnector, feed))["return"]
            == typing.get_type_hints(getattr(rxc.Connector, feed))["return"]
        )

    @pytest.mark.parametrize("name", ["errors", "connection_state"])
    def test_health_properties_match(self, name: str) -> None:
        local = typing.get_type_hints(getattr(rxc.Connector, name).fget)["return"]
        remote = typing.get_type_hints(getattr(RemoteConnector, name).fget)["return"]
        assert local == remote


class TestFencing:
    """The Lua scripts against a real server: only the lease holder writes."""

    async def test_a_holder_that_lost_its_lease_cannot_write(
        self, redis_server: RedisServer
    ) -> None:
        client: Any = aioredis.Redis.from_url(redis_server.url)
        acquire = client.register_script(ACQUIRE_OR_RENEW)
        append = client.register_script(FENCED_APPEND)
        keys = ["s", "s:lease", "s:seq"]

        def entry(seq: int) -> bytes:
            return record_of(("trade", str(seq), b"{}", "0"))[0]

        def batch(*entries: bytes) -> bytes:
            return pack_batch(entries)

        try:
            assert await acquire(keys=["s:lease"], args=["A", 100]) == 2
            assert await acquire(keys=["s:lease"], args=["B", 100]) == 0
            assert (
                await append(keys=keys, args=["A", 100, 1000, "1", "", batch(entry(1), entry(2))])
                == 2
            )
            await asyncio.sleep(0.15)  # A is paused past its lease; B takes over
            assert await acquire(keys=["s:lease"], args=["B", 5000]) == 2
            assert await append(keys=keys, args=["A", 100, 1000, "1", "", batch(entry(3))]) == -1
            # B writes; an id already written is skipped (exactly once in the stream)
            assert (
                await append(keys=keys, args=["B", 5000, 1000, "1", "", batch(entry(2), entry(3))])
                == 1
            )
            # a batch whose predecessor (ending at id 9) was never written is refused
            assert await append(keys=keys, args=["B", 5000, 1000, "1", "9", batch(entry(10))]) == -2
            assert await append(keys=keys, args=["B", 5000, 1000, "1", "3", batch(entry(4))]) == 1
            seqs = [f[b"seq"] for _id, f in await client.xrange("s")]
            assert seqs == [b"1", b"2", b"3", b"4"]
            assert await client.get("s:seq") == b"4"
            # a malformed batch (not type/seq/data/ts quadruples) is refused whole
            bad = entry(5) + b"\nstray"
            with pytest.raises(ResponseError, match="not type/seq/data/ts"):
                await append(keys=keys, args=["B", 5000, 1000, "1", "", bad])
            assert await client.xlen("s") == 4
            assert await client.get("s:seq") == b"4"
            # an empty batch writes nothing; an empty value (ts) is kept as written
            assert await append(keys=keys, args=["B", 5000, 1000, "1", "", b""]) == 0
            empty_ts = b"trade\n5\n{}\n"
            assert await append(keys=keys, args=["B", 5000, 1000, "1", "", empty_ts]) == 1
            newest = (await client.xrevrange("s", count=1))[0][1]
            assert newest == {b"type": b"trade", b"v": b"1", b"seq": b"5", b"data": b"{}",
                              b"ts": b""}  # fmt: skip
        finally:
            await client.aclose()

    async def test_one_call_writes_batches_of_several_streams_each_fenced_alone(
        self, redis_server: RedisServer
    ) -> None:
        """FENCED_APPEND_MANY: each batch gets FENCED_APPEND's answer for it; a refused,
        unchained or malformed batch does not stop the others in the same call."""
        client: Any = aioredis.Redis.from_url(redis_server.url)
        many = client.register_script(FENCED_APPEND_MANY)

        def batch(*seqs: int) -> bytes:
            return pack_batch(record_of(("trade", str(n), b"{}", "0"))[0] for n in seqs)

        def keys(*streams: str) -> list[str]:
            return [k for s in streams for k in (s, f"{s}:lease", f"{s}:seq")]

        try:
            await client.set("b:lease", "other")  # stream b is held by another publisher
            answers = await many(
                keys=keys("a", "b", "c", "a"),
                args=[5000, 1000,
                      "A", "1", "", batch(1, 2),      # a: written
                      "A", "1", "", batch(1),         # b: not our lease
                      "A", "1", "7", batch(8),        # c: its predecessor was never written
                      "A", "1", "2", batch(2, 3)],    # a again, chained: id 2 skipped
            )  # fmt: skip
            assert answers == [2, -1, -2, 1]
            assert [f[b"seq"] for _i, f in await client.xrange("a")] == [b"1", b"2", b"3"]
            assert await client.xlen("b") == 0 and await client.xlen("c") == 0
            bad = batch(4) + b"\nstray"
            answers = await client.evalsha(
                many.sha, 6, *keys("a", "d"), 5000, 1000, "A", "1", "", bad, "A", "0", "", batch(1)
            )
            assert isinstance(answers[0], ResponseError) and answers[1] == 1
            assert await client.xlen("a") == 3 and await client.xlen("d") == 1
        finally:
            await client.aclose()

    async def test_retention_is_bounded_by_maxlen(self, redis_server: RedisServer) -> None:
        """Trimming (approximate, once per batch) keeps about ``maxlen`` entries: whole
        stream nodes (100 entries by default) are removed, the newest are kept."""
        client: Any = aioredis.Redis.from_url(redis_server.url)
        append = client.register_script(FENCED_APPEND)
        keys = ["t", "t:lease", "t:seq"]
        try:
            for first in range(1, 1001, 250):
                batch = pack_batch(
                    record_of(("trade", str(n), b"{}", "0"))[0] for n in range(first, first + 250)
                )
                assert await append(keys=keys, args=["A", 5000, 100, "1", "", batch]) == 250
            assert 100 <= await client.xlen("t") <= 200
            newest = (await client.xrevrange("t", count=1))[0][1]
            assert newest[b"seq"] == b"1000"
        finally:
            await client.aclose()


class TestPromptStop:
    """Stopping in the middle of a blocking read completes at once, also when the client
    has a socket_timeout (redis-py then wraps sends in asyncio.wait_for)."""

    @pytest.mark.parametrize("query", ["", "?socket_timeout=30"])
    @pytest.mark.parametrize("group", [None, "g"])
    async def test_stop_during_a_blocking_read(
        self, redis_server: RedisServer, query: str, group: str | None
    ) -> None:
        loop_problems: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _l, c: loop_problems.append(c))
        remote = RemoteConnector(redis_server.url + query, group=group, block_ms=60_000)
        await remote.start()
        completed: list[bool] = []
        remote.trades(SYMBOL).subscribe(on_completed=lambda: completed.append(True))
        await asyncio.sleep(0.5)  # well inside XREAD BLOCK 60000
        started = time.monotonic()
        await remote.stop()
        assert time.monotonic() - started < 1.0
        assert completed == [True]
        await asyncio.sleep(0)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in pending if "RemoteConnector" in repr(t)]
        await asyncio.sleep(0.2)
        import gc

        gc.collect()  # an unretrieved task exception is reported when the task is freed
        assert loop_problems == []

    async def test_stop_while_entries_flow_leaves_no_unretrieved_task_error(
        self, redis_server: RedisServer
    ) -> None:
        """A read cancelled while data flows can end in ConnectionError instead of the
        cancellation (redis-py swallows it when the connection closes under it): that
        error is retrieved, nothing reaches the loop's exception handler."""
        import gc

        loop_problems: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _l, c: loop_problems.append(c))
        client: Any = aioredis.Redis.from_url(redis_server.url)
        flowing = True

        async def write() -> None:
            n = 0
            while flowing:
                n += 1
                kind, seq, data, ts = encode_model(
                    rxc.Trade(f"S{n % 10}USDT", n, D(1), D(1), "buy", 0, 0)
                )
                fields = {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts}
                await client.xadd(f"rxc:binance:trades:S{n % 10}USDT", fields)

        writer = asyncio.ensure_future(write())
        try:
            for _ in range(5):
                remote = RemoteConnector(redis_server.url, block_ms=100)
                await remote.start()
                for n in range(10):
                    remote.trades(f"S{n}USDT").subscribe()
                await asyncio.sleep(0.2)
                await remote.stop()
        finally:
            flowing = False
            await writer
            await client.aclose()
        await asyncio.sleep(0.1)
        gc.collect()
        assert loop_problems == []

    async def test_one_read_serves_every_feed_and_subscriber(
        self, redis_server: RedisServer
    ) -> None:
        """Subscribers of one feed share one route; all feeds share one reader task (one
        XREAD over every key, one connection); a new subscription does not wait for the
        blocking read in progress, and dispose removes the route."""
        client: Any = aioredis.Redis.from_url(redis_server.url)
        try:
            async with RemoteConnector(redis_server.url, block_ms=60_000, start="0") as remote:
                tasks = len(remote._readers)  # the heartbeat watcher
                first: list[rxc.Trade] = []
                second: list[rxc.Trade] = []
                eth: list[rxc.Trade] = []
                one = remote.trades(SYMBOL).subscribe(first.append)
                two = remote.trades(SYMBOL).subscribe(second.append)
                await asyncio.sleep(0.2)  # now blocked in XREAD BLOCK 60000
                remote.trades("ETHUSDT").subscribe(eth.append)
                assert len(remote._readers) == tasks + 1
                assert set(remote._routes) == {TRADES_KEY, "rxc:binance:trades:ETHUSDT"}
                for key, symbol in (
                    (TRADES_KEY, SYMBOL),
                    ("rxc:binance:trades:ETHUSDT", "ETHUSDT"),
                ):
                    kind, seq, data, ts = encode_model(
                        rxc.Trade(symbol, 1, D(1), D(1), "buy", 0, 0)
                    )
                    fields = {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts}
                    await client.xadd(key, fields)
                await until(lambda: len(first) == len(second) == len(eth) == 1, 2.0, "fan-out")
                one.dispose()
                two.dispose()
                assert set(remote._routes) == {"rxc:binance:trades:ETHUSDT"}
        finally:
            await client.aclose()


class TestReplyShapes:
    """The reader keeps XREAD/XREADGROUP replies raw: a list of pairs over RESP2, a map
    over RESP3; both deliver the same models, in both reading modes."""

    @pytest.mark.parametrize("protocol", [2, 3])
    @pytest.mark.parametrize("group", [None, "g"])
    async def test_both_protocols_deliver_every_entry(
        self, redis_server: RedisServer, protocol: int, group: str | None
    ) -> None:
        client: Any = aioredis.Redis.from_url(redis_server.url)
        written = [rxc.Trade(SYMBOL, n, D("1.5"), D(n), "buy", n, n, n + 0.5) for n in (1, 2, 3)]
        try:
            for trade in written:
                kind, seq, data, ts = encode_model(trade)
                fields = {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts}
                await client.xadd(TRADES_KEY, fields)
            got: list[rxc.Trade] = []
            url = f"{redis_server.url}?protocol={protocol}"
            async with RemoteConnector(url, group=group, start="0", block_ms=100) as remote:
                remote.trades(SYMBOL).subscribe(got.append)
                await until(lambda: len(got) >= 3, 5.0, "three trades")
            assert got == written
        finally:
            await client.aclose()


class TestConsumerGroups:
    async def test_entries_a_dead_consumer_left_unacknowledged_are_claimed(
        self, redis_server: RedisServer
    ) -> None:
        client: Any = aioredis.Redis.from_url(redis_server.url)
        try:
            for n in range(1, 6):
                kind, seq, data, ts = encode_model(rxc.Trade(SYMBOL, n, D(1), D(1), "buy", 0, 0))
                fields = {"type": kind, "v": "1", "seq": seq, "data": data, "ts": ts}
                await client.xadd(TRADES_KEY, fields)
            await client.xgroup_create(TRADES_KEY, "g", id="0")
            # consumer "dead" takes 3 entries and crashes without acknowledging them
            await client.xreadgroup("g", "dead", {TRADES_KEY: ">"}, count=3)
            got: list[rxc.Trade] = []
            async with RemoteConnector(
                redis_server.url, group="g", consumer="live", claim_idle_ms=0
            ) as remote:
                remote.trades(SYMBOL).subscribe(got.append)
                await until(lambda: len(got) >= 5, 5.0, "claimed and new entries")
            assert sorted(t.trade_id for t in got) == [1, 2, 3, 4, 5]
            pending = await client.xpending(TRADES_KEY, "g")
            assert pending["pending"] == 0  # everything acknowledged
        finally:
            await client.aclose()


class TestHeartbeat:
    def test_stale_after_three_periods_then_alive_again(self) -> None:
        tracker = HeartbeatTracker("redis://x")
        events = tracker.observe({"A": {"time": 1.0, "period_ms": 1000}}, now=0.0)
        assert [(e.connection_id, e.state) for e in events] == [
            ("publisher:A", rxc.ConnectionState.CONNECTED)
        ]
        assert tracker.observe({"A": {"time": 2.0, "period_ms": 1000}}, now=1000.0) == []
        # no new beat: fine up to 3 periods after the last change, stale after
        assert tracker.check(1000.0 + STALE_FACTOR * 1000) == []
        stale = tracker.check(1000.0 + STALE_FACTOR * 1000 + 1)
        assert [e.state for e in stale] == [rxc.ConnectionState.STALE]
        back = tracker.observe({"A": {"time": 9.0, "period_ms": 1000}}, now=5000.0)
        assert [e.state for e in back] == [rxc.ConnectionState.CONNECTED]
        assert back[0].time == 5000.0  # epoch ms, like every ConnectionEvent.time
        gone = tracker.observe({}, now=6000.0)
        assert [e.state for e in gone] == [rxc.ConnectionState.CLOSED]

    async def test_sleep_on_follows_a_virtual_clock(self) -> None:
        scheduler = TestScheduler()
        sleeper = asyncio.ensure_future(sleep_on(scheduler, 30.0))
        await asyncio.sleep(0)
        scheduler.advance_by(29.9)
        await asyncio.sleep(0)
        assert not sleeper.done()
        scheduler.advance_by(0.2)
        await asyncio.sleep(0)
        assert sleeper.done()

    def test_backoff_doubles_and_caps(self) -> None:
        assert [backoff_delay(n) for n in (1, 2, 3, 10)] == [0.1, 0.2, 0.4, 5.0]


class TestBackPressure:
    """Redis down: the publisher keeps its exchange side, bounds its buffers, drops the
    oldest non-trade entries (announced by a gap marker) and never drops a trade: its
    trade stream is suspended and backfilled over REST when Redis is back."""

    async def test_outage_longer_than_the_buffer(self, redis_server: RedisServer) -> None:
        async with ExchangeSimulator(
            seed=3, symbols=(SYMBOL,), tick_interval=0.01, periodic_ticks=2
        ) as sim:
            await sim.step(20)
            config = rxc.Config.binance(rest_url=sim.rest_url, ws_url=sim.ws_url)
            problems: list[Exception] = []
            publisher = Publisher(
                config,
                redis_server.url,
                [FeedTarget("trades", SYMBOL), FeedTarget("book_ticker", SYMBOL)],
                buffer_limit=500,
                lease_ms=3000,
                report=problems.append,
            )
            async with publisher:
                await until(lambda: publisher.stats()[0].published >= 20, 10, "first trades")
                redis_server.kill()
                trades_slot, ticker_slot = publisher._slots
                await until(lambda: trades_slot.suspended, 30, "trade buffer overflow")
                await until(lambda: ticker_slot.dropped > 0, 30, "book_ticker overflow")
                assert len(trades_slot.buffer) <= 500 and len(ticker_slot.buffer) <= 500
                assert publisher.connector.started
                redis_server.start()  # empty: the stream restarts from what was buffered
                await until(
                    lambda: not trades_slot.suspended and trades_slot.published > 600,
                    20,
                    "backfilled after the outage",
                )
                await until(lambda: ticker_slot.gaps >= 1, 10, "drop marker")
            assert any("redis unavailable" in str(p) for p in problems)
            trades = await stream_trades(redis_server.url, TRADES_KEY)
            assert any(t.backfilled for t in trades)
            assert_tape(sim, trades)
            client: Any = aioredis.Redis.from_url(redis_server.url)
            try:
                entries = await client.xrange(f"rxc:binance:book_ticker:{SYMBOL}")
            finally:
                await client.aclose()
            markers = [f for _i, f in entries if f[b"type"] == b"gap"]
            assert markers and b"dropped while Redis was unavailable" in markers[0][b"data"]
