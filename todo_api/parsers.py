"""JSON parsing that turns every malformed body into a 400."""

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            # Deeply nested JSON exhausts the stack before DRF's ValueError handling sees it.
            raise ParseError("JSON parse error - the document is nested too deeply.") from error
