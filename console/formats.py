"""How the console writes values for people to read aloud: money with its sign, in the project's locale."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from policies.money import money_display


def money(amount: str | Decimal | None, currency: str) -> str:
    """``$46.00`` (``MONEY_LOCALE``); an amount the API gave as a string is read as a Decimal; None is ""."""
    return "" if amount is None else money_display(Decimal(amount), currency, settings.MONEY_LOCALE)
