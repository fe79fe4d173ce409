"""OpenAPI: every operation declares the errors it can answer, as JSON (``{"detail", "code"}`` or field errors);
the browsable API's raw-data form starts from the same request example as Swagger's "Try it out"."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer

from compensation.permissions import RolePermission

ERROR = inline_serializer("Error", {"detail": serializers.CharField(), "code": serializers.CharField()})
VALIDATION_ERROR = OpenApiResponse(
    description='Validation failed: `{"field": ["message"]}`, nested for customer and incident fields.'
)
BODY_METHODS = {"POST", "PUT", "PATCH"}
ERROR_DESCRIPTIONS = {
    "400": "Malformed or invalid input.",
    "401": "No credentials, or a bad token.",
    "403": "Your role may not do this.",
    "404": "Not found (or not yours to see), or a page beyond the last.",
    "413": "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    "415": "A non-empty body that is not JSON (Content-Type application/json or application/*+json).",
    "429": "Too many requests: wait the seconds Retry-After gives.",
    "503": "The database cannot be reached right now (code `unavailable`); nothing was done: retry after Retry-After.",
}


class RecoveryAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the errors REST framework and Django answer added where missing."""

    def _error_codes(self) -> list[str]:
        view = self.view
        permissions = view.get_permissions()
        public = all(isinstance(p, AllowAny) for p in permissions)
        codes = []
        if self.method in BODY_METHODS or getattr(view, "filterset_class", None) or self.get_override_parameters():
            codes.append("400")
        if not public and view.get_authenticators():
            codes.append("401")
        if any(isinstance(p, RolePermission) for p in permissions):
            codes.append("403")
        if self.path_regex.count("(?P<") or (getattr(view, "pagination_class", None) and self._is_list_view()):
            codes.append("404")
        if self.method in BODY_METHODS:
            codes += ["413", "415"]
        if view.get_throttles():
            codes.append("429")
        codes.append("503")
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith("/api/v1/"):
            return responses
        for code in self._error_codes():
            if code in responses:
                continue
            if code == "400":
                responses[code] = {"description": ERROR_DESCRIPTIONS[code]}
                continue
            response = self._get_response_for_code(ERROR, code, ("application/json",), direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return responses


class ExampleBrowsableAPIRenderer(BrowsableAPIRenderer):
    """The browsable API, its raw-data form for a write starting from the view's ``request_example`` (the
    operation's first example in the schema, compensation/schema_examples.py): a body that works as given, in
    the shape the write takes, rather than an empty serializer's fields (or nothing, for a view without one)."""

    def get_raw_data_form(self, data: Any, view: Any, method: str, request: Any) -> Any:
        form = super().get_raw_data_form(data, view, method, request)
        example = getattr(view, "request_example", None)
        if form is not None and example is not None and method in BODY_METHODS:
            form.fields["_content"].initial = json.dumps(example, indent=4)
        return form


EXAMPLE_RENDERERS = [JSONRenderer, ExampleBrowsableAPIRenderer]
