"""Migration operations that keep schema changes safe on a live PostgreSQL table."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations import AddIndex
from django.db.migrations.state import ProjectState


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, so writes to the table go on while the index is built;
    a plain CREATE INDEX elsewhere (SQLite has no concurrent build, and Django's would fail there)."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._run("database_forwards", app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._run("database_backwards", app_label, schema_editor, from_state, to_state)

    def _run(
        self, direction: str, app_label: str, schema_editor: BaseDatabaseSchemaEditor, *states: ProjectState
    ) -> None:
        concurrent = schema_editor.connection.vendor == "postgresql"
        implementation = getattr(AddIndexConcurrently if concurrent else AddIndex, direction)
        implementation(self, app_label, schema_editor, *states)
