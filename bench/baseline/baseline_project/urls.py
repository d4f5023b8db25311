from django.http import JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def ok(request, *args, **kwargs):
    return JsonResponse({"ok": True})


# Every path (the mix's GET/POST/PATCH/DELETE on /api/v1/tasks...) gets the same answer.
urlpatterns = [re_path(r"^.*$", ok)]
