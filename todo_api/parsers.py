"""JSON parsing that turns every malformed body into a 400."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            # Deeply nested JSON exhausts the stack before DRF's ValueError handling sees it.
            raise ParseError("JSON parse error - the document is nested too deeply.") from error
