from rest_framework.permissions import BasePermission


class PathUserIsCaller(BasePermission):
    """`/api/{user_id}/...` routes: the path's user id must be the token's `sub`."""

    message = "The user id in the path is not yours."

    def has_permission(self, request, view):
        return view.kwargs.get("user_id") == request.user.sub
