"""Conditional requests on tasks (RFC 9110): strong ETags from a task's version, If-None-Match → 304
on reads, If-Match → 412 on writes; weak ETags on lists, from the page itself."""

import hashlib
import re
from collections.abc import Set
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from django.http import HttpResponseBase, HttpResponseNotModified
from django.utils.http import parse_etags
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.models import Task
from tasks.services import VersionMismatch
from todo_api.metrics import PRECONDITION_FAILED

if TYPE_CHECKING:  # what the mixins below are mixed into, for the type checker only
    from rest_framework.viewsets import ModelViewSet

    TaskViewSetBase = ModelViewSet[Task]
else:
    TaskViewSetBase = object

VERSION = re.compile(r"[0-9]{1,10}")
READS = ("GET", "HEAD")


class PreconditionFailed(APIException):
    status_code = HTTPStatus.PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The task has changed since you read it (If-Match). Fetch it again."


def task_etag(task: Task) -> str:
    return f'"{task.pk}.{task.version}"'


def if_match_versions(request: Request, task_id: object) -> Set[int] | None:
    """The versions of task `task_id` that If-Match lets a write change: None for any (no header,
    or `*`). Strong comparison: weak and foreign ETags match nothing."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    etags = parse_etags(header)
    if etags == ["*"]:
        return None
    prefix = f'"{task_id}.'
    # ASCII digits only, and few of them: str.isdigit() admits "²", which int() refuses.
    return {
        int(etag[len(prefix) : -1])
        for etag in etags
        if etag.startswith(prefix) and VERSION.fullmatch(etag[len(prefix) : -1])
    }


def none_match(request: Request, etag: str) -> bool:
    """If-None-Match lists `etag` (weak comparison) or is `*`."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    etags = parse_etags(header)
    return etags == ["*"] or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in etags}


def page_etag(response: Response) -> str:
    """A weak ETag of a rendered list page: it changes exactly when the page does, at no query."""
    response.render()
    return f'W/"{hashlib.md5(response.content, usedforsecurity=False).hexdigest()}"'


class ConditionalTaskMixin(TaskViewSetBase):
    """For TaskViewSet: the ETag of the task a response shows, If-Match on every write of a task
    (`allowed_versions`, which the view hands to the write path) and If-None-Match on reads of tasks
    and lists."""

    task: Task | None = None  # the task this request reads or writes: set by get_object and perform_create

    def get_object(self) -> Task:
        self.task = super().get_object()
        # Checked before the body is validated (RFC 9110 §13.2.2), and again by the write itself.
        versions = self.allowed_versions()
        if self.request.method not in READS and versions is not None and self.task.version not in versions:
            raise PreconditionFailed()
        return self.task

    def allowed_versions(self) -> Set[int] | None:
        task_id = self.kwargs.get(self.lookup_field)
        # The id as the ETag spells it: the route also takes "007" for task 7.
        return if_match_versions(self.request, str(int(task_id)) if task_id is not None else None)

    def get_success_headers(self, data: Any) -> dict[str, str]:
        assert self.task is not None  # perform_create has just saved it
        return {**super().get_success_headers(data), "ETag": task_etag(self.task)}

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, VersionMismatch):
            exc = PreconditionFailed()
        if isinstance(exc, PreconditionFailed):
            PRECONDITION_FAILED.inc()
        return super().handle_exception(exc)

    # A 304 is Django's HttpResponseNotModified, not a DRF Response: the stubs say finalize_response
    # returns a Response, but DRF's dispatch returns whatever response it gets.
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code != HTTPStatus.OK or "ETag" in response:
            return response
        if self.task is not None:
            response["ETag"] = task_etag(self.task)
        elif self.action == "list":
            response["ETag"] = page_etag(response)
        else:
            return response
        if request.method in READS and none_match(request, response["ETag"]):
            return HttpResponseNotModified(headers={"ETag": response["ETag"]})
        return response
