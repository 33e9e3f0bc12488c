"""The local backend: metadata through SQLAlchemy (SQLite or PostgreSQL) and blobs in-process."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from syllabus.client.uris import Location
from syllabus.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from syllabus.blobs.store import BlobStore
    from syllabus.code.sql import SqlCodeStore
    from syllabus.datasets.sql import SqlDatasetStore
    from syllabus.deploy.sql import SqlDeployStore
    from syllabus.evaluation.sql import SqlEvaluationStore
    from syllabus.pipelines.sql import SqlPipelineStore
    from syllabus.registry.sql import SqlRegistryStore
    from syllabus.registry.webhooks import WebhookDispatcher
    from syllabus.tracking.service import TrackingService
    from syllabus.tracking.sql import SqlTrackingStore

__all__ = ["LocalBackend"]


class LocalBackend:
    """Opens the database and the blob store lazily, once, for one :class:`Client`."""

    def __init__(self, location: Location, settings: Settings) -> None:
        self.location = location
        self.settings = settings
        self._lock = threading.Lock()
        self._checked = False

    @cached_property
    def raw_engine(self) -> Engine:
        """The engine without a schema check (``db current`` and ``db upgrade`` use it)."""
        from syllabus.meta import create_engine

        return create_engine(self.location.db_url)

    @property
    def engine(self) -> Engine:
        """The engine, after making sure the schema is this version's (created if empty)."""
        engine = self.raw_engine
        if not self._checked:
            with self._lock:
                if not self._checked:
                    from syllabus.meta import ensure_schema

                    ensure_schema(engine)
                    self._checked = True
        return engine

    def schema_changed(self) -> None:
        """Check the schema again on next use (after ``db upgrade``)."""
        with self._lock:
            self._checked = False

    @cached_property
    def blobs(self) -> BlobStore:
        from syllabus.blobs.store import open_blob_store

        assert self.location.blobs_url is not None
        return open_blob_store(self.location.blobs_url, endpoint_url=self.settings.s3_endpoint_url)

    @cached_property
    def code_store(self) -> SqlCodeStore:
        """The code store (snapshots, environments, notebook checkpoints)."""
        from syllabus.code.sql import SqlCodeStore

        return SqlCodeStore(self.engine)

    @cached_property
    def datasets_store(self) -> SqlDatasetStore:
        from syllabus.datasets.sql import SqlDatasetStore

        return SqlDatasetStore(self.engine)

    @cached_property
    def deploy_store(self) -> SqlDeployStore:
        from syllabus.deploy.sql import SqlDeployStore

        return SqlDeployStore(self.engine)

    @cached_property
    def pipeline_store(self) -> SqlPipelineStore:
        from syllabus.pipelines.sql import SqlPipelineStore

        return SqlPipelineStore(self.engine)

    @cached_property
    def evaluation_store(self) -> SqlEvaluationStore:
        from syllabus.evaluation.sql import SqlEvaluationStore

        return SqlEvaluationStore(self.engine)

    @cached_property
    def tracking_store(self) -> SqlTrackingStore:
        """The tracking store (a remote backend supplies its own TrackingStore)."""
        from syllabus.tracking.sql import SqlTrackingStore

        return SqlTrackingStore(self.engine)

    @cached_property
    def tracking(self) -> TrackingService:
        """Tracking behaviour (buffered metrics, heartbeats, artifacts) over the store."""
        from syllabus.tracking.service import TrackingService

        return TrackingService(
            self.tracking_store,
            lambda: self.blobs,
            system_metrics=self.settings.system_metrics,
            system_metrics_interval=self.settings.system_metrics_interval,
        )

    @cached_property
    def registry_store(self) -> SqlRegistryStore:
        """The registry store; its events go to the webhooks after each commit."""
        from syllabus.registry.sql import SqlRegistryStore

        # Lambdas, not bound methods: each cached property is built only when first used.
        return SqlRegistryStore(self.engine, on_event=lambda e: self.webhooks.send(e))  # noqa: PLW0108

    @cached_property
    def webhooks(self) -> WebhookDispatcher:
        from syllabus.registry.webhooks import WebhookDispatcher

        return WebhookDispatcher(lambda: self.registry_store.list_webhooks())  # noqa: PLW0108

    def close(self) -> None:
        if "webhooks" in self.__dict__:
            self.__dict__.pop("webhooks").close()
        self.__dict__.pop("registry_store", None)
        if "tracking" in self.__dict__:
            self.__dict__.pop("tracking").close()
        self.__dict__.pop("tracking_store", None)
        if "blobs" in self.__dict__:
            self.blobs.close()
            del self.__dict__["blobs"]
        if "raw_engine" in self.__dict__:
            self.raw_engine.dispose()
            del self.__dict__["raw_engine"]
            self.__dict__.pop("datasets_store", None)
            self.__dict__.pop("code_store", None)
            self.__dict__.pop("evaluation_store", None)
            self.__dict__.pop("deploy_store", None)
            self.__dict__.pop("pipeline_store", None)
            self._checked = False
