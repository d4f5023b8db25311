"""/api/schema/, generated once per process and rendered once per format, not on every request.

drf-spectacular's SpectacularAPIView generates the document on each request (50-120 ms of CPU) and
renders it again (YAML about 50 ms, JSON 15 ms): unauthenticated and unthrottled, a few fetchers could
take a server's CPU. The document changes only with the code, so the first request generates it under
a lock and each format's bytes are kept for the life of the process. `?version=` and `?lang=` are
ignored: the API has neither versions nor translations, and a document per value would let clients
make us generate any number of them. An `Accept` with parameters (`indent=2`) is rendered per request
from the kept document, for the same reason.
"""

import threading
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

_lock = threading.Lock()
_document: dict[str, Any] | None = None
# (renderer class, media type) -> (Content-Type, body)
_rendered: dict[tuple[type, str], tuple[str, bytes]] = {}


def forget() -> None:
    """Drops the kept document and renderings (tests that change what the schema says)."""
    global _document
    with _lock:
        _document = None
        _rendered.clear()


def document(request: HttpRequest | None, generate: Any) -> dict[str, Any]:
    global _document
    if _document is None:
        with _lock:
            if _document is None:
                _document = generate(request)
    return _document


class RenderedOnceResponse(Response):
    @property
    def rendered_content(self) -> Any:  # bytes; the stubs say str
        key = (type(self.accepted_renderer), self.accepted_media_type)
        if key[1] != self.accepted_renderer.media_type:
            return super().rendered_content
        if key not in _rendered:
            body = super().rendered_content
            _rendered[key] = (self["Content-Type"], body)
        content_type, body = _rendered[key]
        self["Content-Type"] = content_type
        return body


class SchemaView(SpectacularAPIView):
    def _get_schema_response(self, request: Request) -> Response:
        def generate(request: Request) -> dict[str, Any]:
            generator = self.generator_class(urlconf=self.urlconf, api_version=None, patterns=self.patterns)
            return generator.get_schema(request=request, public=self.serve_public)

        return RenderedOnceResponse(
            data=document(request, generate),
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, None)}"'},
        )

    @extend_schema(exclude=True)  # as SpectacularAPIView's with SERVE_INCLUDE_SCHEMA off
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # No translation.override for ?lang= (see the module's docstring).
        return self._get_schema_response(request)
