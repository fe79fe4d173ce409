"""Money in one currency (DEFAULT_CURRENCY): amounts are Decimals rounded to cents, shown as "12.50"."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, halves up (12.345 -> 12.35), as customers expect."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal | None) -> str | None:
    """The decimal string the API and packs show (``"12.50"``); None stays None."""
    return None if value is None else str(cents(value))
