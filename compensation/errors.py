"""Domain errors: what services raise when a request cannot be done, with codes from one enum.

Services never raise HTTP exceptions; ``compensation.exceptions.exception_handler``
maps these to HTTP in one place (``HTTP_STATUS``), with the
``{"detail": "...", "code": "..."}`` body, or ``{"field": ["message"]}`` for
:class:`InvalidInput`. The admin catches :class:`ApplicationError` and shows
its message.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The ``code`` of an error answer: stable strings clients may branch on."""

    INVALID = "invalid"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    OUTCOME_EXISTS = "outcome_exists"
    EXPIRED = "expired"
    BUDGET_EXHAUSTED = "budget_exhausted"
    ESCALATION_CLOSED = "escalation_closed"
    APPROVAL_REQUIRED = "approval_required"
    NOT_AN_APPROVAL = "not_an_approval"
    FEEDBACK_USED = "feedback_used"
    SIMULATION_RUNNING = "simulation_running"
    THROTTLED = "throttled"
    EVENT_CUSTOMER_LIMIT = "event_customer_limit"


class ApplicationError(Exception):
    """A request the domain refuses; ``message`` is written for the person who made it."""

    default_code = ErrorCode.INVALID

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(ApplicationError):
    """What was asked for does not exist, or the user may not know it does."""

    default_code = ErrorCode.NOT_FOUND


class Conflict(ApplicationError):
    """The request is valid but the current state refuses it (already answered, expired, spent...)."""

    default_code = ErrorCode.CONFLICT


class Gone(ApplicationError):
    """It existed, and no longer works (an expired link)."""

    default_code = ErrorCode.EXPIRED


class TooMany(ApplicationError):
    """More than a limit allows in a period (HTTP 429)."""

    default_code = ErrorCode.THROTTLED


class InvalidInput(ApplicationError):
    """Input the serializers could not judge alone: ``errors`` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        self.errors = errors


class BudgetExhausted(Conflict):
    """The option's policy budget, or the customer's cap under it, cannot cover it."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{detail} Ask for new options.", ErrorCode.BUDGET_EXHAUSTED)
