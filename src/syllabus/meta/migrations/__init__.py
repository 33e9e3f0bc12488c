"""Alembic migrations of the Syllabus schema, shipped inside the package.

``env.py`` is the Alembic environment; ``versions/`` holds one file per revision, numbered
``0001``, ``0002``, ... Use :mod:`syllabus.meta.migrate` rather than the ``alembic`` CLI.
To write a new revision, change :mod:`syllabus.meta.schema`, then autogenerate against a
database at head and review the result::

    python -m syllabus.meta.migrate "add runs"

which builds a scratch SQLite database at the current head, compares it with ``metadata``
and writes ``versions/000N_add_runs.py``. Review it (types, server defaults, data moves),
then run the tests: one checks that the migrations produce exactly ``metadata`` on SQLite
and on PostgreSQL.
"""
