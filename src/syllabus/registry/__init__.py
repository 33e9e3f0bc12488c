"""The model registry: packaged models, versions, aliases, lifecycle stages with gates
declared in policies, approvals, an audit log, webhooks and retirement.

Packaging (model folders and flavors) is in :mod:`syllabus.registry.packaging`.
"""
