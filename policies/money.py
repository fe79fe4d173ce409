"""Money in one currency (DEFAULT_CURRENCY): amounts are Decimals rounded to cents, shown as "12.50"."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale
from babel.numbers import format_currency

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, halves up (12.345 -> 12.35), as customers expect."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal | None) -> str | None:
    """The decimal string the API and packs show (``"12.50"``); None stays None."""
    return None if value is None else str(cents(value))


@functools.lru_cache(maxsize=16)
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def money_display(value: Decimal, currency: str, locale: str) -> str:
    """An amount as a customer reads it, with its currency sign, for ``locale``: ``$46.00``, ``46,00 $``."""
    return format_currency(cents(value), currency, locale=_locale(locale))
