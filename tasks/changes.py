"""The change feed, GET /api/v1/changes: what changed in the caller's tasks since their cursor, so a
client keeps a local copy current without re-reading the list, deletions included.

Without a cursor the feed starts a sync: every current task, by id, paged; the cursor of its last
page continues with the changes recorded (tasks/services.py) after the sync began. A cursor is the
position of the last change a client has applied, signed with the server's secret key: it cannot be
forged or used by another user. See docs/frontend.md, "Sync".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Max
from django.http import HttpResponseBase, HttpResponseNotModified
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authbridge.authentication import caller
from authbridge.models import User
from tasks.compiled import CompiledQuery
from tasks.conditional import none_match, page_etag
from tasks.models import Change, Task
from tasks.pagination import integer_parameter
from tasks.representation import represent_tasks, task_rows
from tasks.schema import IF_NONE_MATCH, header
from tasks.serializers import ChangePageSerializer

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# A signed cursor is about 60 characters; anything much longer is not one, and is not checked.
MAX_CURSOR_LENGTH = 200
SIGNER = signing.Signer(salt="tasks.changes.cursor", sep=".")
FEED_ETAG = header(
    "ETag",
    "A weak entity tag of this page: send it back in If-None-Match to get a 304 while nothing changed.",
    'W/"5f2b7c0e9a1d4e3f8b6a2c1d0e9f8a7b"',
    response=[200, 304],
)


class InvalidCursor(APIException):
    status_code = HTTPStatus.BAD_REQUEST
    default_code = "invalid_cursor"
    default_detail = "This cursor is not one this feed gave you. Start again without one."


class CursorExpired(APIException):
    status_code = HTTPStatus.GONE
    default_code = "cursor_expired"
    default_detail = (
        "Changes after this cursor are past the retention and were removed. Start again without a cursor."
    )


@dataclass(frozen=True)
class Cursor:
    """Where a client is: after the change `position`, and, while a sync is listing the tasks, after
    the task `after_task` (None once the listing is done)."""

    owner: int
    position: int
    after_task: int | None = None

    def encode(self) -> str:
        return SIGNER.sign_object([self.owner, self.position, self.after_task], compress=False)

    @classmethod
    def decode(cls, text: str, owner: User) -> "Cursor":
        if len(text) > MAX_CURSOR_LENGTH:
            raise InvalidCursor()
        try:
            value = SIGNER.unsign_object(text)
        except (signing.BadSignature, ValueError):
            raise InvalidCursor() from None
        # Signed by us, so well formed; the owner is checked all the same, and says nothing more.
        match value:
            case [int() as cursor_owner, int() as position, (int() | None) as after_task] if (
                cursor_owner == owner.pk
            ):
                return cls(cursor_owner, position, after_task)
        raise InvalidCursor()


@dataclass
class Page:
    changes: list[dict[str, Any]]
    cursor: Cursor
    has_more: bool


# A page of one owner's changes after a position, oldest first: the poll's one query. The LIMIT is
# the variant, so each page size compiles once.
CHANGES_AFTER = CompiledQuery(
    lambda limit, owner, after: (
        Change.objects.filter(owner=owner, id__gt=after)
        .order_by("id")
        .values("id", "action", "task_id")[:limit]
    )
)


def start(owner: User) -> Cursor:
    """The cursor of a new sync: the changes after the newest one recorded so far come after the tasks.
    Read before the tasks are, so a change between the two is listed again rather than missed."""
    newest = Change.objects.filter(owner=owner).aggregate(newest=Max("id"))["newest"]
    return Cursor(owner.pk, newest or 0, after_task=0)


def read_page(owner: User, cursor: Cursor, limit: int) -> Page:
    if cursor.after_task is not None:
        return task_listing(owner, cursor, limit)
    return changes_after(owner, cursor, limit)


def task_listing(owner: User, cursor: Cursor, limit: int) -> Page:
    """A page of a sync's listing: an upsert of each current task, by id."""
    assert cursor.after_task is not None
    tasks = Task.objects.owned_by(owner).filter(pk__gt=cursor.after_task).order_by("pk")
    rows = list(task_rows(tasks)[: limit + 1])
    has_more = len(rows) > limit
    tasks_read = represent_tasks(rows[:limit])
    after_task = tasks_read[-1]["id"] if has_more else None
    changes = [{"kind": "upsert", "id": task["id"], "task": task} for task in tasks_read]
    return Page(changes, Cursor(owner.pk, cursor.position, after_task), has_more)


def changes_after(owner: User, cursor: Cursor, limit: int) -> Page:
    """The changes after the cursor's position: each task once, with its state as it is now (its
    later changes, if any, follow on a later page), and after it each reminder that fired."""
    rows = CHANGES_AFTER.dicts(limit + 1, owner=owner.pk, after=cursor.position)
    if rows and rows[0]["action"] == Change.Action.PURGED:
        raise CursorExpired()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return Page([], cursor, has_more=False)
    last_change = {row["task_id"]: row["id"] for row in rows}
    reminded = {row["task_id"]: row["id"] for row in rows if row["action"] == Change.Action.REMINDED}
    current = {
        task["id"]: task
        for task in represent_tasks(task_rows(Task.objects.owned_by(owner).filter(pk__in=last_change)))
    }
    # (position, then the state before the reminder at the same position, the entry)
    entries = [
        (position, 0, {"kind": "upsert", "id": task_id, "task": current[task_id]})
        if task_id in current
        else (position, 0, {"kind": "delete", "id": task_id})
        for task_id, position in last_change.items()
    ]
    entries += [
        (position, 1, {"kind": "reminder", "id": task_id, "task": current[task_id]})
        for task_id, position in reminded.items()
        if task_id in current
    ]
    changes = [entry for _, _, entry in sorted(entries, key=lambda item: item[:2])]
    return Page(changes, Cursor(owner.pk, rows[-1]["id"]), has_more)


def purge_before(cutoff: datetime) -> int:
    """Removes changes recorded before `cutoff`, but for events still waiting to be published;
    returns how many. Of each user's removed changes the newest stays, as a PURGED marker: a cursor
    before it has lost changes and is answered 410."""
    old = Change.objects.filter(recorded_at__lt=cutoff).exclude(
        event__isnull=False, published_at__isnull=True
    )
    newest_old = old.values("owner").annotate(newest=Max("id")).values("newest")
    with transaction.atomic():
        deleted, _ = old.exclude(id__in=newest_old).delete()
        # The markers themselves are old: the newest of them survives, as the user's only marker.
        old.filter(id__in=newest_old).exclude(action=Change.Action.PURGED).update(action=Change.Action.PURGED)
    return deleted


def retention_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.CHANGES_RETENTION_DAYS)


class ChangeFeedView(APIView):
    @extend_schema(
        operation_id="listChanges",
        summary="Sync: what changed since your cursor",
        description="Without `cursor`, starts a sync: an `upsert` of every task you have, by id, in pages "
        "(`has_more` is true until the last). With the `cursor` of the last page: what changed since, "
        "oldest first, each task once with its current state (`upsert`) or its removal (`delete`). "
        "Applying the changes in order gives exactly your tasks. Nothing new: no changes, the same "
        "cursor, and with `If-None-Match` a `304`. A `410` means start again without a cursor.",
        parameters=[
            OpenApiParameter(
                "cursor",
                {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
                OpenApiParameter.QUERY,
                description="The `cursor` of the page you applied last; leave it out to start a sync.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                OpenApiParameter.QUERY,
                description="How many changes a page holds at most.",
            ),
            IF_NONE_MATCH,
            FEED_ETAG,
        ],
        responses={
            200: ChangePageSerializer,
            304: OpenApiResponse(description="Not modified: nothing changed since the page with this ETag."),
        },
    )
    def get(self, request: Request) -> Response:
        owner = caller(request)
        limit = integer_parameter(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        text = request.query_params.get("cursor")
        cursor = start(owner) if text is None else Cursor.decode(text, owner)
        page = read_page(owner, cursor, limit)
        # Nothing new: the cursor sent, as it came (signing it again would give the same text).
        next_text = text if text is not None and page.cursor == cursor else page.cursor.encode()
        return Response({"changes": page.changes, "cursor": next_text, "has_more": page.has_more})

    # A 304 is Django's HttpResponseNotModified, not a DRF Response (see ConditionalTaskMixin).
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code != HTTPStatus.OK:
            return response
        response["ETag"] = page_etag(response)
        if none_match(request, response["ETag"]):
            return HttpResponseNotModified(headers={"ETag": response["ETag"]})
        return response
