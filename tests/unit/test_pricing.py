"""The cost of a call, from genai-prices' bundled price database."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import genai_prices
import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot
from genai_prices.types import ModelPrice as GenaiModelPrice

from hermes_stream.exceptions import InvalidEvent
from hermes_stream.pricing import PRICING_VERSION, call_cost, price_of
from hermes_stream.workload_catalog import LLM_MODELS

MTOK = 1_000_000
PEAK = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # DeepSeek peak hours: 00:30-16:30 UTC
OFF_PEAK = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)


def test_pricing_version_names_the_genai_prices_release() -> None:
    assert PRICING_VERSION == f"genai-prices {genai_prices.__version__}"


def test_claude_sonnet_call_costs_its_published_prices() -> None:
    # Claude Sonnet 4.5: $3 input, $15 output, $0.30 cache read, $3.75 cache write (5 min) per Mtok.
    cost = call_cost("anthropic", "claude-sonnet-4-5", 10_000, 500, 8_000, 1_000)

    by_hand = (1_000 * 3 + 8_000 * 0.30 + 1_000 * 3.75 + 500 * 15) / MTOK
    assert cost == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.01665)
    oracle = calc_price(
        Usage(input_tokens=10_000, output_tokens=500, cache_read_tokens=8_000, cache_write_tokens=1_000),
        "claude-sonnet-4-5",
        provider_id="anthropic",
    )
    assert cost == pytest.approx(float(oracle.total_price), rel=1e-12)


def test_cache_reads_cost_less_and_are_not_counted_twice() -> None:
    # GPT-4o: $2.50 input, $1.25 cached input, $10 output per Mtok.
    cached = call_cost("openai", "gpt-4o", 10_000, 500, cache_read_tokens=8_000)
    uncached = call_cost("openai", "gpt-4o", 10_000, 500)

    assert cached is not None and uncached is not None
    assert cached < uncached
    assert cached == pytest.approx((2_000 * 2.5 + 8_000 * 1.25 + 500 * 10) / MTOK, rel=1e-12)
    assert uncached == pytest.approx((10_000 * 2.5 + 500 * 10) / MTOK, rel=1e-12)
    double_counted = (10_000 * 2.5 + 8_000 * 1.25 + 500 * 10) / MTOK
    assert cached != pytest.approx(double_counted)


def test_cache_writes_cost_the_cache_write_price() -> None:
    with_writes = call_cost("anthropic", "claude-haiku-4-5", 5_000, 0, cache_write_tokens=4_000)
    without = call_cost("anthropic", "claude-haiku-4-5", 5_000, 0)

    assert with_writes == pytest.approx((1_000 * 1.0 + 4_000 * 1.25) / MTOK, rel=1e-12)
    assert without is not None and with_writes is not None
    assert with_writes - without == pytest.approx(4_000 * (1.25 - 1.0) / MTOK, rel=1e-9)


def test_cache_writes_cost_the_input_price_without_a_cache_write_price() -> None:
    price = price_of("openai", "gpt-4o")

    assert price is not None and price.cache_write_mtok is None
    written = call_cost("openai", "gpt-4o", 4_000, 0, cache_write_tokens=4_000)
    assert written == call_cost("openai", "gpt-4o", 4_000, 0)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("ollama", "qwen2.5-coder:32b"),  # a local model
        ("openai", "gpt-9-imaginary"),
        ("ollama", "gpt-4o"),  # a provider genai-prices lacks: never guessed from another one
        ("groq", "whisper-large-v3"),  # billed by audio hours, not tokens
    ],
)
def test_a_model_without_a_token_price_costs_none_not_zero(provider: str, model: str) -> None:
    assert call_cost(provider, model, 1_000, 100) is None
    assert call_cost(provider, model, 0, 0) is None
    assert price_of(provider, model) is None


def test_a_free_model_costs_zero() -> None:
    assert call_cost("openrouter", "meta-llama/llama-3.3-70b-instruct:free", 50_000, 2_000) == 0.0
    price = price_of("openrouter", "meta-llama/llama-3.3-70b-instruct:free")
    assert price is not None and (price.input_mtok, price.output_mtok) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("provider", "dated", "base"),
    [
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-20240806", "gpt-4o"),  # compact date, as LiteLLM and OpenRouter write it
    ],
)
def test_a_dated_model_name_costs_what_its_model_costs(provider: str, dated: str, base: str) -> None:
    assert call_cost(provider, dated, 30_000, 900, 20_000) == call_cost(provider, base, 30_000, 900, 20_000)


def test_a_model_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    find = DataSnapshot.find_provider_model

    def counting(self: DataSnapshot, model_ref: str, *args: Any) -> Any:
        lookups.append(model_ref)
        return find(self, model_ref, *args)

    monkeypatch.setattr(DataSnapshot, "find_provider_model", counting)
    for _ in range(3):
        assert call_cost("openai", "o1-mini", 1_000, 100) is not None
        assert call_cost("openai", "no-such-model-for-the-cache-test", 1_000, 100) is None
        assert price_of("openai", "o1-mini") is not None

    assert lookups == ["o1-mini", "no-such-model-for-the-cache-test"]


def test_a_call_above_the_tier_threshold_pays_the_tier_price_on_all_tokens() -> None:
    # Gemini 2.5 Pro per Mtok: $1.25 input, $0.125 cached, $10 output up to 200k input tokens;
    # $2.50, $0.25 and $15 for the whole call above.
    price = price_of("google", "gemini-2.5-pro")
    at_threshold = call_cost("google", "gemini-2.5-pro", 200_000, 1_000, cache_read_tokens=150_000)
    above = call_cost("google", "gemini-2.5-pro", 200_001, 1_000, cache_read_tokens=150_000)

    assert price is not None and price.tiered and price.input_mtok == 1.25
    assert at_threshold == pytest.approx((50_000 * 1.25 + 150_000 * 0.125 + 1_000 * 10) / MTOK, rel=1e-12)
    assert above == pytest.approx((50_001 * 2.5 + 150_000 * 0.25 + 1_000 * 15) / MTOK, rel=1e-12)


def test_a_call_is_priced_at_its_event_time() -> None:
    # DeepSeek chat: $0.27 input and $1.10 output per Mtok in peak hours, half that off peak.
    peak = call_cost("deepseek", "deepseek-chat", 10_000, 1_000, ts=PEAK.timestamp())
    off_peak = call_cost("deepseek", "deepseek-chat", 10_000, 1_000, ts=OFF_PEAK.timestamp())

    assert peak == pytest.approx((10_000 * 0.27 + 1_000 * 1.10) / MTOK, rel=1e-12)
    assert off_peak == pytest.approx((10_000 * 0.135 + 1_000 * 0.55) / MTOK, rel=1e-12)


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "cache_read", "cache_write"),
    [(100, 10, 80, 30), (100, -1, 0, 0), (-5, 10, 0, 0), (100, 10, -1, 0)],
)
def test_impossible_token_counts_are_rejected(
    input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
) -> None:
    with pytest.raises(InvalidEvent):
        call_cost("openai", "gpt-4o", input_tokens, output_tokens, cache_read, cache_write)


def test_every_catalog_model_but_the_local_one_has_a_price() -> None:
    catalog = {(spec.provider, spec.name) for spec in LLM_MODELS}
    unpriced = {(provider, model) for provider, model in catalog if price_of(provider, model) is None}

    assert unpriced == {("ollama", "qwen2.5-coder:32b")}


def test_prices_come_from_the_bundled_data_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    # As if genai_prices.UpdatePrices had fetched other prices: ours stay PRICING_VERSION's.
    set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))
    try:
        cost = call_cost("openai", "gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
    finally:
        set_custom_snapshot(None)

    assert cost == pytest.approx(0.15 + 0.60, rel=1e-12)


USAGES = [(12_000, 700, 9_000, 1_500), (200_000, 2_000, 150_000, 0), (300_000, 4_000, 0, 250_000)]
MOMENTS = [datetime(2025, 7, 1, 3, 0, tzinfo=UTC), PEAK, OFF_PEAK]


def test_costs_agree_with_genai_prices_for_every_model_in_its_database() -> None:
    compared = 0
    for provider in providers:
        for model in provider.models:
            moments = MOMENTS[-1:] if isinstance(model.prices, GenaiModelPrice) else MOMENTS
            for moment in moments:
                for usage in USAGES:
                    cost = call_cost(provider.id, model.id, *usage, ts=moment.timestamp())
                    if cost is None:
                        continue
                    fields = dict(zip(("input", "output", "cache_read", "cache_write"), usage, strict=True))
                    expected = calc_price(
                        Usage(**{f"{name}_tokens": value for name, value in fields.items()}),
                        model.id,
                        provider_id=provider.id,
                        genai_request_timestamp=moment,
                    )
                    assert cost == pytest.approx(float(expected.total_price), rel=1e-9, abs=1e-12), (
                        provider.id,
                        model.id,
                        moment,
                        usage,
                    )
                    compared += 1

    assert compared > 5_000
