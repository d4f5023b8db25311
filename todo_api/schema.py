"""OpenAPI generation that documents the error responses each operation can give."""

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

# What DRF's CharField does that JSON Schema's minLength/maxLength cannot say: it refuses NUL
# characters, and strips whitespace (str.strip: exactly these characters) before a blank check.
NO_NUL = "[^\\u0000]"
NOT_SPACE = (
    "[^\\u0000\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
TEXT_PATTERN = f"^{NO_NUL}*$"
NON_BLANK_TEXT_PATTERN = f"^{NO_NUL}*{NOT_SPACE}{NO_NUL}*$"


class ErrorSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `invalid_token`.")
    message = serializers.CharField(help_text="A readable explanation.")
    fields = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Validation errors by field name."
    )


ERROR_DESCRIPTIONS = {
    400: "Invalid input: malformed JSON, a wrong type, a value out of range or an unknown parameter.",
    401: "The bearer token is missing (`WWW-Authenticate: Bearer`) or invalid "
    '(`WWW-Authenticate: Bearer error="invalid_token"`).',
    403: "The path's user id is not the caller's, or the account is disabled.",
    404: "No such task among the caller's own (another user's task is reported the same way).",
    411: "The body came without a Content-Length (`Transfer-Encoding: chunked`); send its length.",
    413: "The request body is over the size limit.",
    415: "The body is not `application/json`.",
    503: "The database or the token signing keys are unavailable; retry after `Retry-After` seconds.",
}


class ErrorDocumentingAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # Only what a client writes: responses carry whatever the token or admin stored.
        if direction != "request":
            return schema
        if getattr(serializer, "reject_unknown_fields", False):
            schema["additionalProperties"] = False
        for name, field in serializer.fields.items():
            if field.read_only or not isinstance(field, serializers.CharField):
                continue
            if not any(
                isinstance(validator, ProhibitNullCharactersValidator) for validator in field.validators
            ):
                continue
            property_schema = schema["properties"].get(name, {})
            if property_schema.get("type") == "string" and "pattern" not in property_schema:
                blank_allowed = field.allow_blank or not field.trim_whitespace
                property_schema["pattern"] = TEXT_PATTERN if blank_allowed else NON_BLANK_TEXT_PATTERN
        return schema

    def _error_statuses(self):
        statuses = {400, 503}
        if self.view.get_authenticators():
            statuses |= {401, 403}
        if "{id}" in self.path or "{user_id}" in self.path:
            statuses.add(404)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {411, 413, 415}
        return sorted(statuses)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self._error_statuses():
            response = self._get_response_for_code(ErrorSerializer, str(status), direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[status]
            responses.setdefault(str(status), response)
        return responses
