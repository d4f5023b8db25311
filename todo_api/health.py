"""Liveness and readiness probes for the platform; neither needs a token."""

from django.db import DatabaseError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from tasks.models import Task
from todo_api.drain import is_draining
from todo_api.errors import DATABASE_RETRY_AFTER_SECONDS, error_body

status_serializer = inline_serializer("ProbeStatus", {"status": serializers.CharField()})


@extend_schema(responses={200: status_serializer}, tags=["health"])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def healthz(request):
    """Liveness: the process answers. Touches nothing else."""
    return Response({"status": "ok"})


@extend_schema(responses={200: status_serializer}, tags=["health"])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def readyz(request):
    """Readiness: the process is not shutting down and the database answers a real query on our tables."""
    if is_draining():
        body = error_body(503, "draining", "This server is shutting down.")
        return Response(body, status=503)
    try:
        Task.objects.exists()
    except DatabaseError:
        body = error_body(503, "database_unavailable", "The database is unavailable.")
        return Response(body, status=503, headers={"Retry-After": DATABASE_RETRY_AFTER_SECONDS})
    return Response({"status": "ready"})
