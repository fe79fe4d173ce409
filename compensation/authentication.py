"""Token authentication that reads the token, its user and the user's role groups in one statement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Field, Model
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from compensation.authority import user_limits_preset
from compensation.models import AuthorityLimit
from compensation.roles import ROLE_NAMES, user_roles_preset


@dataclass(frozen=True)
class _Column:
    field: Field
    expression: Any  # the field's column, as converters expect it
    converters: tuple[Callable[..., Any], ...]  # the database's and the field's, as Django's compiler applies them

    def convert(self, value: Any) -> Any:
        for converter in self.converters:
            value = converter(value, self.expression, connection)
        return value


@dataclass(frozen=True)
class _Statement:
    sql: str
    user: tuple[_Column, ...]
    token: tuple[_Column, ...]


_statements: dict[tuple[str, type[Model]], _Statement] = {}


def _columns(model: type[Model]) -> tuple[_Column, ...]:
    columns = []
    for field in model._meta.concrete_fields:
        expression = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        columns.append(_Column(field, expression, tuple(converters)))
    return tuple(columns)


def _statement(token_model: type[Model]) -> _Statement:
    """The SELECT for one token: the user's and the token's columns, a bit per role group, then the highest
    authority limits (per option, per month) among the user's groups (compensation/authority.py).

    Written once per database and token model, from the models' metadata (so
    quoting and column names are the database's and the models'); plain SQL
    that SQLite and PostgreSQL both run, which PostgreSQL prepares once per
    connection like every repeated statement here.
    """
    key = (connection.alias, token_model)
    if key in _statements:
        return _statements[key]
    user_model = get_user_model()
    q = connection.ops.quote_name
    memberships = user_model.groups.through._meta
    member, member_group = memberships.get_field("user").column, memberships.get_field("group").column
    user_token = token_model._meta.get_field("user")
    bits = " ".join(f"WHEN %s THEN {1 << n}" for n in range(len(ROLE_NAMES)))
    names = ", ".join(["%s"] * len(ROLE_NAMES))
    limits = AuthorityLimit._meta
    limit_group = limits.get_field("group").column
    user, token = _columns(user_model), _columns(token_model)
    selected = [f"u.{q(c.field.column)}" for c in user] + [f"t.{q(c.field.column)}" for c in token]
    sql = (
        f"SELECT {', '.join(selected)}, "  # noqa: S608 - names from the models' metadata, the key is a parameter
        f"(SELECT COALESCE(SUM(CASE g.{q('name')} {bits} END), 0) FROM {q(memberships.db_table)} m "
        f"INNER JOIN {q(Group._meta.db_table)} g ON g.{q(Group._meta.pk.column)} = m.{q(member_group)} "
        f"WHERE m.{q(member)} = t.{q(user_token.column)} AND g.{q('name')} IN ({names})), "
        + ", ".join(
            f"(SELECT MAX(a.{q(limits.get_field(name).column)}) FROM {q(memberships.db_table)} m "  # noqa: S608
            f"INNER JOIN {q(limits.db_table)} a ON a.{q(limit_group)} = m.{q(member_group)} "
            f"WHERE m.{q(member)} = t.{q(user_token.column)})"
            for name in ("per_option", "per_month")
        )
        + f" FROM {q(token_model._meta.db_table)} t "
        f"INNER JOIN {q(user_model._meta.db_table)} u ON u.{q(user_model._meta.pk.column)} = t.{q(user_token.column)} "
        f"WHERE t.{q(token_model._meta.get_field('key').column)} = %s"
    )
    _statements[key] = statement = _Statement(sql, user, token)
    return statement


def _instance(model: type[Model], columns: Sequence[_Column], values: Sequence[Any]) -> Any:
    converted = [column.convert(value) for column, value in zip(columns, values, strict=True)]
    return model.from_db(connection.alias, [column.field.attname for column in columns], converted)


class RoleTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, with the user's role read in the same statement.

    DRF reads the token and its user in one query, and ``user_role`` /
    ``user_has_role`` read the user's groups in a second. Here one statement
    returns the user, the token and a bit for each role group the user is in
    (a subquery summing ``CASE`` over the user-group rows: plain SQL on SQLite
    and PostgreSQL), handed to :func:`compensation.roles.user_roles_preset`, and
    the highest authority limits of the user's groups (two more subqueries, on a
    table of a few rows), handed to :func:`compensation.authority.user_limits_preset`.
    Read on every request, never cached: a change an admin makes to the
    user's groups holds from the next request.

    The statement is written by hand from the models' metadata rather than
    built by the ORM each time: building ``select_related("user")`` with three
    ``Exists`` annotations cost more processor time than the two queries it
    replaced; this costs about a third of DRF's own token query alone.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        token_model = self.get_model()
        statement = _statement(token_model)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, [*ROLE_NAMES, *ROLE_NAMES, key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        split = len(statement.user)
        user = _instance(get_user_model(), statement.user, row[:split])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = _instance(token_model, statement.token, row[split:-3])
        token.user = user
        bits = int(row[-3])
        user_roles_preset(user, {name for n, name in enumerate(ROLE_NAMES) if bits & (1 << n)})
        user_limits_preset(user, row[-2], row[-1])
        return user, token
