"""Estimated USD cost of model replies, so a run can report (and cap) what it spent.

Prices are Anthropic's list prices per million tokens at standard (non-batch) rates; prompt
cache writes are the 5-minute kind (1.25x input) and cache reads 0.1x input. An estimate, not a
bill: long-context surcharges, 1-hour cache writes and batch discounts are not modelled. A model
missing from the table costs None ("unknown"), never a guessed number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from perfgym.agent.types import Usage

CACHE_WRITE_MULTIPLIER = 1.25
CACHE_READ_MULTIPLIER = 0.1


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model."""

    input_per_mtok: float
    output_per_mtok: float

    @property
    def cache_write_per_mtok(self) -> float:
        return self.input_per_mtok * CACHE_WRITE_MULTIPLIER

    @property
    def cache_read_per_mtok(self) -> float:
        return self.input_per_mtok * CACHE_READ_MULTIPLIER

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + usage.cache_creation_input_tokens * self.cache_write_per_mtok
            + usage.cache_read_input_tokens * self.cache_read_per_mtok
        ) / 1_000_000


_HAIKU_45 = ModelPrice(1.0, 5.0)
_SONNET_4 = ModelPrice(3.0, 15.0)
_OPUS_4 = ModelPrice(15.0, 75.0)
_OPUS_45 = ModelPrice(5.0, 25.0)

# Model ids without their date suffix (`claude-haiku-4-5-20251001` -> `claude-haiku-4-5`).
PRICES: dict[str, ModelPrice] = {
    "claude-haiku-4-5": _HAIKU_45,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-opus-4": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-3-5-haiku": ModelPrice(0.8, 4.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
}

_SUFFIX = re.compile(r"(-\d{8}|-latest)$")


def normalize_model(model: str) -> str:
    """The table key of a model id: lower case, without a date or `-latest` suffix."""
    return _SUFFIX.sub("", model.strip().lower())


def price_for(model: str) -> ModelPrice | None:
    """The list price of `model`, or None when the table does not know it."""
    return PRICES.get(normalize_model(model))


def estimate_cost(usage: Usage, model: str) -> float | None:
    """USD cost of `usage` on `model`; None for an unknown model (zero usage costs 0.0)."""
    if usage.total == 0:
        return 0.0
    price = price_for(model)
    return None if price is None else price.cost(usage)


def format_cost(cost_usd: float | None) -> str:
    """`$0.0123`, or `unknown` for a model without a price."""
    return "unknown" if cost_usd is None else f"${cost_usd:.4f}"
