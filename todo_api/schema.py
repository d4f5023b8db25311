"""OpenAPI generation that documents the error responses each operation can give."""
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


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
    413: "The request body is over the size limit.",
    415: "The body is not `application/json`.",
    503: "The database or the token signing keys are unavailable; retry after `Retry-After` seconds.",
}


class ErrorDocumentingAutoSchema(AutoSchema):
    def _error_statuses(self):
        statuses = {400, 503}
        if self.view.get_authenticators():
            statuses |= {401, 403}
        if "{id}" in self.path or "{user_id}" in self.path:
            statuses.add(404)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {413, 415}
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
