"""What the simulator's Binance Spot ``exchangeInfo`` says about each symbol.

The filters are the rules the matching engine enforces (:class:`.orders.SymbolRules`), so a
client that checks orders against ``exchangeInfo`` agrees with the engine.
"""

from __future__ import annotations

from typing import Any, Final

from rxconnector.testing.simulator.market import SymbolMarket
from rxconnector.testing.simulator.numbers import scaled

__all__ = ["ORDER_TYPES", "STP_MODES", "SYMBOL_PERMISSIONS", "symbol_filters"]


#: ``orderTypes`` of every symbol in ``exchangeInfo``.
ORDER_TYPES: Final = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)


STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")


#: The feature flags of every symbol in ``exchangeInfo``.
SYMBOL_PERMISSIONS: Final = {
    "icebergAllowed": True,
    "ocoAllowed": True,
    "otoAllowed": True,
    "opoAllowed": True,
    "quoteOrderQtyMarketAllowed": True,
    "allowTrailingStop": True,
    "cancelReplaceAllowed": True,
    "amendAllowed": True,
    "pegInstructionsAllowed": True,
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
}


def symbol_filters(m: SymbolMarket) -> list[dict[str, Any]]:
    """The symbol's ``filters``: what the matching engine enforces (``orders.SymbolRules``)."""
    tick, step = scaled(1, m.price_exp), scaled(1, m.qty_exp)
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": tick,
            "maxPrice": scaled(m.initial_ticks * 100, m.price_exp),
            "tickSize": tick,
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": step,
            "maxQty": scaled(m.lot * 10_000, m.qty_exp),
            "stepSize": step,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": scaled(m.lot * 1_000, m.qty_exp),
            "stepSize": "0.00000000",
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ]
