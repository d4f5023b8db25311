"""Tasks in the Django admin, for staff signed in with Django's own session login."""

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from authbridge.models import User
from tasks.fields import RecurrenceField, TagNamesField, TimeZoneField
from tasks.models import RepeatFrom, Tag, Task, overdue_at
from tasks.recurrence import series_errors
from tasks.representation import sorted_names
from tasks.services import (
    tag_delete,
    tag_rename,
    tags_delete,
    task_create,
    task_delete,
    task_update,
    tasks_delete,
)


class OwnerFilter(admin.SimpleListFilter):
    """A search box for one owner (email or Better Auth id): a list of every user would not scale."""

    title = "owner"
    parameter_name = "owner"
    template = "admin/tasks/owner_filter.html"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> tuple[()]:
        return ()

    def has_output(self) -> bool:
        return True

    # Shown under the box: any token can carry any email, so one email may name several users.
    MATCHES_SHOWN = 10

    def matching(self) -> Q:
        owner = (self.value() or "").strip()
        return Q(email__iexact=owner) | Q(sub=owner) | Q(username=owner)

    def matches(self) -> QuerySet[User]:
        if not (self.value() or "").strip():
            return User.objects.none()
        return User.objects.filter(self.matching()).order_by("pk")[: self.MATCHES_SHOWN]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not (self.value() or "").strip():
            return queryset
        return queryset.filter(owner__in=User.objects.filter(self.matching()))

    # Not Django's choice dicts: our template (owner_filter.html) reads these keys instead.
    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        # The form keeps the changelist's other filters, search and ordering when it is submitted.
        yield {
            "value": self.value() or "",
            "hidden": [
                (name, value) for name, value in changelist.params.items() if name != self.parameter_name
            ],
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
            "matches": [str(user) for user in self.matches()],
        }


class OverdueFilter(admin.SimpleListFilter):
    """As the API's `overdue`: open and past due."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        overdue = overdue_at(timezone.now())
        if self.value() == "yes":
            return queryset.filter(overdue)
        if self.value() == "no":
            return queryset.exclude(overdue)
        return queryset


class TaskAdminForm(forms.ModelForm):
    """Tags as names, one per line, checked as the API checks them and resolved among the owner's
    own tags: a list of every user's tags to pick from would leak names and not scale."""

    tag_names = forms.CharField(
        label="Tags",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One tag per line; a name differing only in case is the owner's existing tag.",
    )

    class Meta:
        model = Task
        fields = [
            "owner",
            "title",
            "description",
            "priority",
            "due_at",
            "completed",
            "recurrence",
            "time_zone",
            "repeat_from",
            "remind_at",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left out, as the API lets them be: the defaults.
        self.fields["time_zone"].required = self.fields["repeat_from"].required = False
        if self.instance.pk:
            self.initial["tag_names"] = "\n".join(sorted_names(tag.name for tag in self.instance.tags.all()))

    def clean_recurrence(self) -> str | None:
        return self.api_value(RecurrenceField(), self.cleaned_data["recurrence"] or None)

    def clean_time_zone(self) -> str:
        return self.api_value(TimeZoneField(), self.cleaned_data["time_zone"] or "UTC")

    def clean_repeat_from(self) -> str:
        return self.cleaned_data["repeat_from"] or RepeatFrom.DUE

    def clean(self) -> dict[str, Any]:
        """The series as the API checks it (tasks/recurrence.py)."""
        super().clean()
        cleaned = self.cleaned_data
        errors = series_errors(
            rule_text=cleaned.get("recurrence"),
            due_at=cleaned.get("due_at"),
            zone_name=cleaned.get("time_zone") or "UTC",
            from_completion=cleaned.get("repeat_from") == RepeatFrom.COMPLETION,
            clearing_due="due_at" in self.changed_data and "recurrence" not in self.changed_data,
        )
        for field, messages in errors.items():
            self.add_error(field, messages)
        return cleaned

    @staticmethod
    def api_value(field: serializers.Field, value: object) -> Any:
        """The value as the API's field takes it, its refusal as the form's."""
        if value is None:
            return None
        try:
            return field.run_validation(value)
        except ValidationError as error:
            raise forms.ValidationError(error.detail) from error

    def clean_tag_names(self) -> list[str]:
        lines = [line for line in self.cleaned_data["tag_names"].splitlines() if line.strip()]
        return self.api_value(TagNamesField(), lines)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskAdminForm
    list_display = (
        "title",
        "owner",
        "priority",
        "due_at",
        "tag_list",
        "completed",
        "created_at",
        "updated_at",
    )
    list_filter = ("completed", "priority", OverdueFilter, "due_at", OwnerFilter)
    search_fields = ("title", "description", "owner__email", "=owner__sub", "tags__name")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    # Never a <select> of every user.
    autocomplete_fields = ("owner",)
    fields = (
        "owner",
        "title",
        "description",
        "priority",
        "due_at",
        "tag_names",
        "recurrence",
        "time_zone",
        "repeat_from",
        "remind_at",
        "completed",
        "completed_at",
        "reminded_at",
        "next_occurrence",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("completed_at", "reminded_at", "next_occurrence", "created_at", "updated_at")
    # A COUNT(*) of the whole table on every page is slow on a big table; the filtered count stays.
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        return super().get_queryset(request).prefetch_related("tags")

    @admin.display(description="tags")
    def tag_list(self, task: Task) -> str:
        return ", ".join(sorted_names(tag.name for tag in task.tags.all()))

    def save_model(self, request: HttpRequest, obj: Task, form: forms.ModelForm, change: bool) -> None:
        """Through the write path: the form has set the new values on `obj`, which the admin then
        logs and redirects with, so the task as written is copied back onto it."""
        tags = form.cleaned_data["tag_names"]
        if change:
            fields = {name: getattr(obj, name) for name in form.changed_data if name != "tag_names"}
            written = task_update(Task.objects.get(pk=obj.pk), tags=tags, **fields)
        else:
            fields = {name: getattr(obj, name) for name in TaskAdminForm.Meta.fields}
            written = task_create(tags=tags, **fields)
        vars(obj).update(vars(written))

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """The tags are written with the task (save_model); a task has no inlines."""

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        task_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        tasks_delete(queryset)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    """A user's tags: renamed, merged by hand, or deleted (which takes them off their tasks)."""

    list_display = ("name", "owner", "task_count")
    list_filter = (OwnerFilter,)
    search_fields = ("name", "owner__email", "=owner__sub")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(task_count=Count("tasks"))

    def get_form(
        self, request: HttpRequest, obj: Tag | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        # A tag stays its owner's: moved to another user it would stay on the first one's tasks.
        # Disabled rather than read-only, so the form still checks (owner, name) is unique.
        form.base_fields["owner"].disabled = obj is not None
        return form

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, tag: Tag) -> int:
        return tag.task_count  # type: ignore[attr-defined]  # annotated by get_queryset

    def save_model(self, request: HttpRequest, obj: Tag, form: forms.ModelForm, change: bool) -> None:
        if change:
            tag_rename(obj)
        else:
            obj.save()  # a new tag is on no task yet

    def delete_model(self, request: HttpRequest, obj: Tag) -> None:
        tag_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        tags_delete(queryset)
