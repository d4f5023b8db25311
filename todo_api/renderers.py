"""The API's JSON renderer: the document DRF's JSONRenderer writes, encoded by orjson.

Encoding a page of tasks with the standard library's json module, and formatting its timestamps in
Python before that, cost a list a noticeable share of its CPU (docs/performance.md); orjson does both
in C. Its output is DRF's, byte for byte: compact, UTF-8, timestamps in UTC ending in "Z"
(RFC 3339, as DRF's encoder writes them), U+2028 and U+2029 escaped.
"""

from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
# What orjson does not encode itself (lazy translations, Decimal, sets) DRF's encoder turns into
# what it does.
encode_other = JSONEncoder().default


def render_json(data: Any) -> bytes:
    """`data` as the API's JSON: compact, UTF-8, UTC timestamps with a "Z"."""
    try:
        rendered = orjson.dumps(data, default=encode_other, option=OPTIONS)
    except orjson.JSONEncodeError:  # e.g. an integer past 64 bits, which orjson refuses and DRF writes
        return JSONRenderer().render(data)
    # Valid JSON, but not valid JavaScript before ES2019: escaped, as DRF escapes them.
    return rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        # `Accept: application/json; indent=4` and the like: DRF's own renderer honours the parameters.
        if accepted_media_type not in (None, self.media_type) or "indent" in (renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return render_json(data)
