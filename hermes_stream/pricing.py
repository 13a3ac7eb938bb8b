"""What an LLM call costs, from the price database bundled with ``genai-prices``.

Token semantics are OpenTelemetry GenAI's, as in the event contract:
``input_tokens`` includes the cache reads and writes, and ``genai-prices``
counts them the same way (its Anthropic extractor adds the cache tokens into
``input_tokens``), so a call is billed as::

    (input - cache_read - cache_write) * input price
    + cache_read * cache read price      (the input price if none is published)
    + cache_write * cache write price    (the input price if none is published)
    + output * output price              (reasoning tokens are part of output)
    + a per-request fee, for the few models that have one

``genai_prices.calc_price`` takes ~100 µs a call, too slow for every event,
so each (provider, model) is matched once (cached, misses too) and its prices
are flattened to floats. What the database expresses is kept:

* tiers: a model such as Gemini 2.5 Pro costs more per token once a call's
  ``input_tokens`` (cache tokens included) exceed a threshold, and the higher
  price then applies to all of that call's tokens (``> 200_000``, not ``>=``);
* prices that change over time: a new price from a date on, or DeepSeek's
  peak hours; a call is priced at its ``ts``, now when none is given.

Only the standard prices apply: batch, priority or flex service tiers are not
in the event. A model billed by something other than tokens (audio hours,
pages) has no price here, while one listed with no prices at all (``:free``
models, subscriptions) costs 0. The provider must be one ``genai-prices``
knows: a local Ollama model is unknown, never guessed from a cloud provider.

The bundled data is always used, even if the process started
``genai_prices.UpdatePrices`` (which fetches prices over the network), so a
cost is reproducible from :data:`PRICING_VERSION`. ``genai-prices`` itself is
imported on the first lookup: it takes ~0.2 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from functools import lru_cache
from importlib.metadata import version
from typing import TYPE_CHECKING, Final, Literal

from hermes_stream.exceptions import InvalidEvent

if TYPE_CHECKING:
    from genai_prices import types as gp
    from genai_prices.data_snapshot import DataSnapshot

#: The price data behind every estimate: ``genai-prices`` bundles its data in
#: each release and exposes no separate snapshot date, so its version says it.
PRICING_VERSION: Final = f"genai-prices {version('genai-prices')}"

#: Where a call's cost comes from: the provider's own figure, our estimate
#: from :func:`call_cost`, or neither (a model with no known price).
CostStatus = Literal["reported", "estimated", "unknown"]

_DAY: Final = 86_400.0
_TOKEN_PRICES: Final = frozenset({"input_mtok", "output_mtok"})


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's standard price in USD per million tokens, below any tier (for display).

    A ``None`` cache price means that no separate price is published: those
    tokens cost the input price.
    """

    provider: str
    model: str
    input_mtok: float
    output_mtok: float
    cache_read_mtok: float | None
    cache_write_mtok: float | None
    tiered: bool  # a higher price applies above some input size


def call_cost(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    *,
    ts: float | None = None,
) -> float | None:
    """The USD cost of one call at event time *ts* (now if None); None if the model has no price.

    Raises :class:`InvalidEvent` when a count is negative or the cache tokens
    exceed ``input_tokens`` (they are part of it).
    """
    uncached = input_tokens - cache_read_tokens - cache_write_tokens
    if uncached < 0 or min(output_tokens, cache_read_tokens, cache_write_tokens) < 0:
        raise _invalid_usage(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
    schedule = _schedule(provider, model)
    if schedule is None:
        return None
    band = schedule.price_at(ts).band(input_tokens)
    return (
        uncached * band.input
        + cache_read_tokens * band.cache_read
        + cache_write_tokens * band.cache_write
        + output_tokens * band.output
    ) / 1e6 + band.per_call


def price_of(provider: str, model: str, *, ts: float | None = None) -> ModelPrice | None:
    """The price of *model* at *ts* (now if None), or None if ``genai-prices`` has none."""
    schedule = _schedule(provider, model)
    if schedule is None:
        return None
    price = schedule.price_at(ts)
    base = price.base
    return ModelPrice(
        provider,
        model,
        base.input,
        base.output,
        base.cache_read if price.cache_read_priced else None,
        base.cache_write if price.cache_write_priced else None,
        tiered=bool(price.tiers),
    )


@dataclass(frozen=True, slots=True)
class _Band:
    """USD per million tokens, and per call, once a call's input exceeds ``above`` tokens."""

    above: int
    input: float
    output: float
    cache_read: float
    cache_write: float
    per_call: float


@dataclass(frozen=True, slots=True)
class _Price:
    """One set of prices: a base band and higher tiers by input size, ascending."""

    base: _Band
    tiers: tuple[_Band, ...]
    cache_read_priced: bool
    cache_write_priced: bool

    def band(self, input_tokens: int) -> _Band:
        band = self.base
        for tier in self.tiers:
            if input_tokens <= tier.above:
                break
            band = tier
        return band


@dataclass(frozen=True, slots=True)
class _When:
    """When a conditional price applies: from an instant on, or a daily UTC window."""

    since: float = float("-inf")  # epoch seconds
    daily: tuple[float, float] | None = None  # seconds into the UTC day: [start, end)

    def active(self, ts: float) -> bool:
        if self.daily is None:
            return ts >= self.since
        start, end = self.daily
        second = ts % _DAY
        if end < start:  # the window spans midnight
            return second >= start or second < end
        return start <= second < end


@dataclass(frozen=True, slots=True)
class _Schedule:
    """A model's prices over time: the last condition in force wins, else the first price."""

    default: _Price
    conditional: tuple[tuple[_When, _Price], ...]  # last listed first

    def price_at(self, ts: float | None) -> _Price:
        if not self.conditional:
            return self.default
        when = time.time() if ts is None else ts
        for condition, price in self.conditional:
            if condition.active(when):
                return price
        return self.default


@lru_cache(maxsize=4096)
def _schedule(provider: str, model: str) -> _Schedule | None:
    """Match (provider, model) in the bundled data once; None when unknown or not token-priced."""
    try:
        _, info = _bundled_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    return _schedule_of(info)


@lru_cache(maxsize=1)
def _bundled_snapshot() -> DataSnapshot:
    """The price data shipped with genai-prices, whatever snapshot the process set globally."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


def _schedule_of(info: gp.ModelInfo) -> _Schedule | None:
    from genai_prices import types as gp

    if isinstance(info.prices, gp.ModelPrice):
        price = _price_of(info.prices)
        return None if price is None else _Schedule(price, ())
    conditional: list[tuple[_When, _Price]] = []
    for conditional_price in reversed(info.prices):
        price = _price_of(conditional_price.prices)
        if price is None:
            return None
        conditional.append((_when(conditional_price.constraint), price))
    return _Schedule(conditional[-1][1], tuple(conditional))


def _when(constraint: gp.StartDateConstraint | gp.TimeOfDateConstraint | None) -> _When:
    from genai_prices import types as gp

    if constraint is None:
        return _When()
    if isinstance(constraint, gp.StartDateConstraint):
        return _When(since=datetime.combine(constraint.start_date, time_of_day(), UTC).timestamp())
    return _When(daily=(_utc_second(constraint.start_time), _utc_second(constraint.end_time)))


def _utc_second(moment: time_of_day) -> float:
    """Seconds into the UTC day of a time of day; a naive time is UTC, as genai-prices reads it."""
    utc = datetime.combine(date(1970, 1, 2), moment, moment.tzinfo or UTC).astimezone(UTC)
    return utc.hour * 3600 + utc.minute * 60 + utc.second + utc.microsecond / 1e6


def _price_of(prices: gp.ModelPrice) -> _Price | None:
    """Flatten one genai-prices price; None when it bills by something other than tokens."""
    listed = {key for key, value in vars(prices).items() if value is not None}
    if listed and not listed & _TOKEN_PRICES:
        return None
    ladders = [
        _ladder(figure)
        for figure in (
            prices.input_mtok,
            prices.output_mtok,
            prices.cache_read_mtok,
            prices.cache_write_mtok,
            prices.requests_kcount,
        )
    ]
    thresholds = sorted({start for _, tiers in ladders for start, _ in tiers})
    bands = [_band(above, *(_figure(ladder, above) for ladder in ladders)) for above in (-1, *thresholds)]
    return _Price(bands[0], tuple(bands[1:]), "cache_read_mtok" in listed, "cache_write_mtok" in listed)


_Ladder = tuple[float | None, tuple[tuple[int, float], ...]]  # base price, (tier start, price) ascending


def _ladder(price: Decimal | gp.TieredPrices | None) -> _Ladder:
    from genai_prices.types import TieredPrices

    if price is None:
        return None, ()
    if isinstance(price, TieredPrices):
        return float(price.base), tuple((tier.start, float(tier.price)) for tier in price.tiers)
    return float(price), ()


def _figure(ladder: _Ladder, above: int) -> float | None:
    """The price for calls with more than *above* input tokens: the highest tier started by then."""
    figure, tiers = ladder
    for start, price in tiers:
        if start <= above:
            figure = price
    return figure


def _band(
    above: int,
    input_mtok: float | None,
    output_mtok: float | None,
    cache_read_mtok: float | None,
    cache_write_mtok: float | None,
    requests_kcount: float | None,
) -> _Band:
    input_price = input_mtok or 0.0
    return _Band(
        above,
        input_price,
        output_mtok or 0.0,
        input_price if cache_read_mtok is None else cache_read_mtok,
        input_price if cache_write_mtok is None else cache_write_mtok,
        (requests_kcount or 0.0) / 1000,
    )


def _invalid_usage(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> InvalidEvent:
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }
    for name, value in counts.items():
        if value < 0:
            return InvalidEvent(name, f"negative token count {value}")
    return InvalidEvent(
        "cache_read_tokens",
        f"cache reads ({cache_read}) and writes ({cache_write}) exceed input_tokens ({input_tokens}), "
        "which includes them",
    )
