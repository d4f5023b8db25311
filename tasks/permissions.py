from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from authbridge.authentication import caller


class PathUserIsCaller(BasePermission):
    """`/api/{user_id}/...` routes: the path's user id must be the token's `sub`."""

    message = "The user id in the path is not yours."

    def has_permission(self, request: Request, view: APIView) -> bool:
        # Checked after IsAuthenticated (permission_classes), so the caller is a User.
        return view.kwargs.get("user_id") == caller(request).sub
