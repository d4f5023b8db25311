"""What the API's answers look like, for tests that compare whole bodies."""

import pytest

both_slash_forms = pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])


def iso(moment):
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def as_json(task):
    """The task as the API must show it, read back from the database."""
    task.refresh_from_db()
    return {
        "id": task.pk,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": iso(task.completed_at),
        "priority": task.get_priority_display(),
        "due_at": iso(task.due_at),
        "tags": sorted((tag.name for tag in task.tags.all()), key=str.casefold),
        "recurrence": task.recurrence,
        "time_zone": task.time_zone,
        "repeat_from": task.repeat_from,
        "remind_at": iso(task.remind_at),
        "reminded_at": iso(task.reminded_at),
        "next_occurrence": task.next_occurrence,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
    }


TITLE_REQUIRED = {
    "status": 400,
    "code": "invalid",
    "message": "The request has invalid fields.",
    "fields": {"title": ["This field is required."]},
}
