"""Tasks in the Django admin, for staff signed in with Django's own session login."""

from django.contrib import admin
from django.db.models import Q

from tasks.models import Task


class OwnerFilter(admin.SimpleListFilter):
    """A search box for one owner (email or Better Auth id): a list of every user would not scale."""

    title = "owner"
    parameter_name = "owner"
    template = "admin/tasks/owner_filter.html"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        owner = (self.value() or "").strip()
        if not owner:
            return queryset
        return queryset.filter(Q(owner__email__iexact=owner) | Q(owner__sub=owner) | Q(owner__username=owner))

    def choices(self, changelist):
        # The form keeps the changelist's other filters, search and ordering when it is submitted.
        yield {
            "value": self.value() or "",
            "hidden": [
                (name, value) for name, value in changelist.params.items() if name != self.parameter_name
            ],
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
        }


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "completed", "created_at", "updated_at")
    list_filter = ("completed", OwnerFilter)
    search_fields = ("title", "description", "owner__email", "=owner__sub")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    # Never a <select> of every user.
    autocomplete_fields = ("owner",)
    fields = ("owner", "title", "description", "completed", "created_at", "updated_at")
    readonly_fields = ("created_at", "updated_at")
    # A COUNT(*) of the whole table on every page is slow on a big table; the filtered count stays.
    show_full_result_count = False
