"""Domain errors become HTTP answers in one place (compensation/exceptions.py): status and body per class."""

from __future__ import annotations

import pytest

from compensation import errors
from compensation.exceptions import application_error_response


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.NotFound("No such offer set."), 404, "not_found"),
        (errors.Conflict("Already answered."), 409, "conflict"),
        (errors.Conflict("Already answered.", errors.ErrorCode.OUTCOME_EXISTS), 409, "outcome_exists"),
        (errors.BudgetExhausted("The monthly budget is spent."), 409, "budget_exhausted"),
        (errors.Gone("The link has expired."), 410, "expired"),
        (errors.ApplicationError("Not possible."), 400, "invalid"),
    ],
)
def test_each_domain_error_has_its_status_and_code(error: errors.ApplicationError, status: int, code: str) -> None:
    response = application_error_response(error)

    assert response.status_code == status
    assert response.data == {"detail": error.message, "code": code}


def test_invalid_input_answers_per_field() -> None:
    response = application_error_response(errors.InvalidInput({"choice": ["Not an option."]}))

    assert response.status_code == 400
    assert response.data == {"choice": ["Not an option."]}
