"""What a client may write to a task, validated strictly, and what it reads back."""

from rest_framework import serializers

from tasks.models import Task


class StrictCharField(serializers.CharField):
    """Text must be a JSON string: a number is not a title."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false; "yes", 1 and "true" are refused."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


TASK_FIELDS = ["id", "title", "description", "completed", "created_at", "updated_at"]


def _timestamp(value):
    # As DRF's DateTimeField renders UTC: ISO 8601 with a "Z".
    return value.isoformat().replace("+00:00", "Z")


def represent_task(values):
    """A task's JSON shape from a dict of its TASK_FIELDS: lists build it from `.values()` rows
    directly, because DRF's per-field serialization costs far more than the query."""
    return {
        **values,
        "created_at": _timestamp(values["created_at"]),
        "updated_at": _timestamp(values["updated_at"]),
    }


class TaskSerializer(serializers.ModelSerializer):
    title = StrictCharField(min_length=1, max_length=200)
    description = StrictCharField(max_length=1000, allow_blank=True, required=False, trim_whitespace=False)
    completed = StrictBooleanField(required=False)

    class Meta:
        model = Task
        fields = TASK_FIELDS
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance):
        return represent_task({name: getattr(instance, name) for name in TASK_FIELDS})

    def update(self, instance, validated_data):
        """Task.write: an UPDATE, never Model.save(), which would INSERT the task again when a
        concurrent DELETE removed it after it was read; only of a version If-Match allows."""
        instance.write(lambda task: validated_data, versions=self.context.get("versions"))
        return instance
