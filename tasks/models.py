"""A task belongs to exactly one user; every view finds tasks through `owned_by`.

Code that already holds a task it was allowed to see (the serializer's UPDATE, the toggle) and code
that is not about one user (readiness, the admin) uses `Task.objects` directly.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class TaskQuerySet(models.QuerySet):
    def owned_by(self, user):
        """The ownership rule: a user sees and changes their own tasks, nobody else's."""
        return self.filter(owner=user)


class Task(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=1000, blank=True, default="")
    completed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_created_idx"),
            models.Index(fields=["owner", "completed"], name="task_owner_completed_idx"),
        ]

    def __str__(self):
        return self.title

    def toggle_completed(self):
        """Flips `completed` in one UPDATE, so concurrent toggles lose no update."""
        Task.objects.filter(pk=self.pk).update(completed=~models.F("completed"), updated_at=Now())
        self.refresh_from_db(fields=["completed", "updated_at"])
