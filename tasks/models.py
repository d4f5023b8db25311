"""A task belongs to exactly one user; every query for tasks goes through `owned_by`. So do tags."""

import functools
import operator

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower, Now


class Priority(models.IntegerChoices):
    """Stored as a rank, so ordering by priority is low < medium < high and indexes stay small."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"


class TagQuerySet(models.QuerySet):
    def owned_by(self, user):
        """A user's tags are theirs alone, as their tasks are."""
        return self.filter(owner=user)

    def named(self, *names):
        """The tags with these names in any case, compared with the database's lower(), as the
        unique constraint is: Unicode-aware on PostgreSQL, ASCII-only on SQLite."""
        matches = [models.Q(name_key=Lower(models.Value(name))) for name in names]
        return self.alias(name_key=Lower("name")).filter(functools.reduce(operator.or_, matches))


class Tag(models.Model):
    """A user's label for tasks. Its identity is the name in any case; it keeps the first spelling used."""

    # No index of its own: the unique constraint's index starts with the owner.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags", db_index=False
    )
    name = models.CharField(max_length=50)

    objects = TagQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint("owner", Lower("name"), name="tag_owner_name_ci_unique")]

    def __str__(self):
        return self.name


class TaskQuerySet(models.QuerySet):
    def owned_by(self, user):
        """The ownership rule: a user sees and changes their own tasks, nobody else's."""
        return self.filter(owner=user)


class Task(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=1000, blank=True, default="")
    completed = models.BooleanField(default=False)
    # Set by the server when `completed` becomes true, cleared when it becomes false.
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # db_default: adding the column to a live table is a catalog change on PostgreSQL, not a rewrite.
    # A plain SmallIntegerField, not Positive...: that one's CHECK would scan the table when added.
    priority = models.SmallIntegerField(choices=Priority, default=Priority.MEDIUM, db_default=Priority.MEDIUM)
    due_at = models.DateTimeField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tasks")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_created_idx"),
            models.Index(fields=["owner", "completed"], name="task_owner_completed_idx"),
            # due_after/due_before, overdue and has_due (see docs/performance.md for why only this one).
            models.Index(fields=["owner", "due_at"], name="task_owner_due_idx"),
        ]

    def __str__(self):
        return self.title

    def toggle_completed(self):
        """Flips `completed` in one UPDATE, so concurrent toggles lose no update; `completed_at`
        follows from the row's own old value, not from what this request read."""
        Task.objects.filter(pk=self.pk).update(
            completed=~models.F("completed"),
            completed_at=models.Case(models.When(completed=False, then=Now()), default=None),
            updated_at=Now(),
        )
        self.refresh_from_db(fields=["completed", "completed_at", "updated_at"])
