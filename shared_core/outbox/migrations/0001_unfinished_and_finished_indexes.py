"""Partial indexes on django_tasks_db's table, so that neither the gauge nor pruning reads the whole table.

The gauge (``outbox_stats``) reads unfinished tasks only; pruning reads successful tasks by ``finished_at``.
The same SQL runs on SQLite and PostgreSQL.
"""

from django.db import migrations

TABLE = "django_tasks_database_dbtaskresult"


class Migration(migrations.Migration):
    dependencies = [("django_tasks_database", "0021_conditional_partial_index_ordering")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS outbox_unfinished_idx ON {TABLE} (queue_name, status)"
            " WHERE status IN ('READY', 'RUNNING', 'FAILED')",
            reverse_sql="DROP INDEX IF EXISTS outbox_unfinished_idx",
        ),
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS outbox_successful_idx ON {TABLE} (finished_at)"
            " WHERE status = 'SUCCESSFUL'",
            reverse_sql="DROP INDEX IF EXISTS outbox_successful_idx",
        ),
    ]
