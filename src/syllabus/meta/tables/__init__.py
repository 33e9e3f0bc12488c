"""Component tables, one module per component, all on :data:`syllabus.meta.schema.metadata`.

The tables live here, in ``meta``, because ``meta`` is the single source of DDL and sits
below the components: a component's ``sql.py`` imports its tables from
``syllabus.meta.tables.<component>``; ``meta`` never imports a component. Importing this
package registers every table on ``metadata`` (``migrate`` does, before it creates a fresh
database at head or compares migrations with ``metadata``).

Adding a component's tables: write ``tables/<component>.py``, import it below, then run
``python -m syllabus.meta.migrate "add <component> tables"`` and review the new revision.
"""

from __future__ import annotations

from syllabus.meta.tables import (
    code,  # noqa: F401 - registers the code tables
    datasets,  # noqa: F401 - registers the datasets tables
    deploy,  # noqa: F401 - registers the deploy tables
    evaluation,  # noqa: F401 - registers the evaluation tables
    monitoring,  # noqa: F401 - registers the monitoring tables
    pipelines,  # noqa: F401 - registers the pipelines tables
    registry,  # noqa: F401 - registers the registry tables
    server,  # noqa: F401 - registers the server (auth) tables
    tracking,  # noqa: F401 - registers the tracking tables
)

__all__: list[str] = []
