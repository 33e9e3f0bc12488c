"""Alembic migrations of the Syllabus schema, shipped inside the package.

``env.py`` is the Alembic environment; ``versions/`` holds one file per revision, numbered
``0001``, ``0002``, ... Use :mod:`syllabus.meta.migrate` rather than the ``alembic`` CLI.
To write a new revision, change :mod:`syllabus.meta.schema`, then autogenerate against a
database at head and review the result::

    python -c "from syllabus.meta.migrate import revision; revision('sqlite:///x.db', 'add runs')"
"""
