"""Deployment targets: where a revision runs (``local``, ``docker``) or what it is written
as (``kubernetes``). Each implements :class:`~syllabus.deploy.targets.base.Target`."""
