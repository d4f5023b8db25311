"""Liveness and readiness probes for the platform; neither needs a token."""

from django.db import DatabaseError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.models import Task
from todo_api.drain import is_draining
from todo_api.errors import database_unavailable, error_response
from todo_api.schema import ErrorSerializer

status_serializer = inline_serializer("ProbeStatus", {"status": serializers.CharField()})


@extend_schema(
    operation_id="checkLiveness",
    summary="Liveness",
    description="200 while the process answers. Touches nothing else, not even the database.",
    responses={200: status_serializer},
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def healthz(request: Request) -> Response:
    """Liveness: the process answers. Touches nothing else."""
    return Response({"status": "ok"})


@extend_schema(
    operation_id="checkReadiness",
    summary="Readiness",
    description="200 when the database answers a query on our own tables, else 503.",
    responses={200: status_serializer, 503: ErrorSerializer},
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def readyz(request: Request) -> HttpResponse:
    """Readiness: the process is not shutting down and the database answers a real query on our tables."""
    if is_draining():
        return error_response(503, "draining", "This server is shutting down.")
    try:
        Task.objects.exists()
    except DatabaseError:
        return database_unavailable()
    return Response({"status": "ready"})
