"""Strict readers for configuration from the environment.

Every reader names the variable in its error, so a bad deployment fails at
start with a message that says what to fix (healthchecks' ``envbool`` style),
never later with a confusing traceback. Values are read from ``os.environ`` as
they are (no ``$`` interpolation, so secrets are taken literally); only URL
parsing is delegated to django-environ.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from decimal import Decimal, InvalidOperation

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


class ConfigError(ImproperlyConfigured):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")


def raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def string(name: str, default: str | None = None) -> str | None:
    value = raw(name)
    return default if value is None else value


def boolean(name: str, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"{value!r} is not a boolean; use one of 1, 0, true, false, yes, no, on, off")


def integer(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, f"{value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {number}")
    return number


def decimal(name: str, default: str, *, minimum: Decimal | None = None) -> Decimal:
    value = raw(name) or default
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(name, f"{value!r} is not a decimal number such as {default}") from None
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise ConfigError(name, f"must be a finite number of at least {minimum}, got {value!r}")
    return number


def csv_list(name: str, default: list[str]) -> list[str]:
    value = raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def currency(name: str, default: str) -> str:
    value = (raw(name) or default).upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ConfigError(name, f"{value!r} is not a three-letter ISO 4217 currency code such as USD")
    return value


def locale(name: str, default: str) -> str:
    """A locale Babel knows (``en_US``, ``de_DE``), for formatting money in messages."""
    from babel import Locale, UnknownLocaleError

    value = raw(name) or default
    try:
        Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigError(name, f"{value!r} is not a locale such as en_US, en_GB or de_DE") from None
    return value.replace("-", "_")


def time_zone(name: str, default: str) -> str:
    value = raw(name) or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(name, f"{value!r} is not an IANA time zone such as UTC or Europe/Berlin") from None
    return value


def throttle_rate(name: str, default: str) -> str:
    value = raw(name) or default
    if not _RATE.fullmatch(value):
        raise ConfigError(name, f"{value!r} is not a rate such as 1000/min (per s, min, hour or day)")
    return value


def database(name: str, default: str) -> dict:
    value = raw(name) or default
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ConfigError(name, f"cannot parse {value!r} as a database URL ({exc})") from None
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.sqlite3", "django.db.backends.postgresql"}:
        raise ConfigError(name, "must be a sqlite:/// or postgres:// URL")
    return config


def redis_url(name: str) -> str | None:
    value = raw(name)
    if value is not None and not re.match(r"^rediss?://", value):
        raise ConfigError(name, f"{value!r} is not a redis:// or rediss:// URL")
    return value


def public_base_url(name: str, *, port_name: str) -> str:
    """``name`` (an http:// or https:// URL, without its trailing slash); unset, the address this server answers
    on: ``http://127.0.0.1:<port_name>``, 8000 when that is unset too (the port gunicorn.conf.py and
    ``make run`` bind)."""
    value = raw(name)
    if value is None:
        port = integer(port_name, 8000, minimum=1, maximum=65535)
        return f"http://127.0.0.1:{port}"
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(name, f"{value!r} is not an http:// or https:// URL such as https://recovery.example.com")
    return value.rstrip("/")


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive), else a start-up error listing them."""
    value = (raw(name) or default).lower()
    if value not in choices:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(choices)}")
    return value
