"""The shared cache table (throttling counters) for deployments without Redis."""

from django.db import migrations


def create_cache_table(apps, schema_editor):
    from django.core.cache import caches
    from django.core.cache.backends.db import BaseDatabaseCache

    for alias in caches:
        cache = caches[alias]
        if not isinstance(cache, BaseDatabaseCache):
            continue
        table = cache._table
        if table in schema_editor.connection.introspection.table_names():
            continue
        from django.core.management import call_command

        call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies: list = []
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
