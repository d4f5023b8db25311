"""Query parameters of the task list: `completed`, `search` and `ordering`, parsed strictly."""

from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend, OrderingFilter, SearchFilter

BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}
# 200 characters of 4 UTF-8 bytes, percent-encoded, fit with every other list parameter in the
# query string limit (todo_api/edge.py, MAX_QUERY_STRING_BYTES).
MAX_SEARCH_LENGTH = 200


class CompletedFilter(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        value = request.query_params.get("completed")
        if value is None:
            return queryset
        if value.lower() not in BOOLEAN_WORDS:
            raise ValidationError({"completed": ["Must be true or false."]})
        return queryset.filter(completed=BOOLEAN_WORDS[value.lower()])

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "completed",
                "in": "query",
                "required": False,
                "description": "Only completed (true) or open (false) tasks.",
                "schema": {"type": "boolean"},
            }
        ]


class LiteralSearchFilter(SearchFilter):
    """Matches the whole text, case-insensitively; DRF's default splits it into words."""

    def get_search_terms(self, request):
        value = request.query_params.get(self.search_param, "")
        if len(value) > MAX_SEARCH_LENGTH:
            raise ValidationError({self.search_param: [f"At most {MAX_SEARCH_LENGTH} characters."]})
        value = value.replace("\x00", "")
        return [value] if value.strip() else []

    def get_schema_operation_parameters(self, view):
        [parameter] = super().get_schema_operation_parameters(view)
        parameter["description"] = "Tasks whose title or description contains this text, ignoring case."
        parameter["schema"]["maxLength"] = MAX_SEARCH_LENGTH
        return [parameter]


class StrictOrderingFilter(OrderingFilter):
    """Unknown ordering fields are a 400, not silently ignored; ties break on id."""

    def get_ordering(self, request, queryset, view):
        # DRF reads `ordering=` as "no ordering given"; it names no field, like `ordering=,`.
        if request.query_params.get(self.ordering_param) == "":
            raise ValidationError({self.ordering_param: ["Name at least one field, or leave ordering out."]})
        return super().get_ordering(request, queryset, view)

    def remove_invalid_fields(self, queryset, fields, view, request):
        allowed = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
        unknown = [field for field in fields if field.removeprefix("-") not in allowed]
        if unknown:
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Unknown field: {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}."
                    ]
                }
            )
        return [*fields, "-id"]

    def get_schema_operation_parameters(self, view):
        # A comma-separated list of known fields: documented as such, since anything else is a 400.
        fields = [name if isinstance(name, str) else name[0] for name in view.ordering_fields]
        return [
            {
                "name": self.ordering_param,
                "in": "query",
                "required": False,
                "description": "Fields to order by, comma-separated; `-` before a field sorts it descending.",
                "style": "form",
                "explode": False,
                "schema": {
                    "type": "array",
                    "minItems": 1,  # `ordering=` names no field: a 400
                    "items": {"type": "string", "enum": [*fields, *(f"-{name}" for name in fields)]},
                },
            }
        ]
