"""The signed-in user's own endpoint, beside the user model."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authbridge.serializers import MeSerializer


@extend_schema_view(
    get=extend_schema(
        operation_id="getMe",
        summary="Who am I",
        description="The caller as their token describes them. `id` is the user id the compatibility "
        "routes take in their path.",
    )
)
class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        """The caller, as Better Auth describes them."""
        return Response(MeSerializer(request.user).data)
