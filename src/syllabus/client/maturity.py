"""``maturity()`` on the :class:`~syllabus.client.Client` (a mixin): which MLOps maturity
level a workspace has reached, criterion by criterion, with what would meet each one.

The levels (each includes the ones below it):

0. **Tracked**: runs exist.
1. **Versioned**: datasets and models are versioned, and a model version's training run
   names the dataset version it read (lineage).
2. **Reproducible**: runs carry a code snapshot (or a notebook checkpoint) and their
   Python environment, and at least one run was reproduced (``syllabus reproduce``).
3. **Automated**: a pipeline's trigger has fired, a monitor has alert rules, and a
   promotion went through a policy's gates.

A level is reached when all its criteria and those of the levels below are met. Run-based
criteria look at the most recent :data:`RECENT_RUNS` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from syllabus.errors import ConfigError, NotFoundError, SyllabusError

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.datasets.models import DatasetSummary
    from syllabus.pipelines.models import Firing
    from syllabus.registry.models import Event, ModelVersion, RegisteredModel
    from syllabus.tracking.models import RunInput, RunPage

__all__ = ["RECENT_RUNS", "Criterion", "MaturityAPI", "MaturityReport"]

RECENT_RUNS: Final = 500
_BUILT_IN_GATES: Final = ("integrity",)  # every policy checks it: it does not make a policy

LEVELS: Final = {
    0: "tracked: experiments are recorded",
    1: "versioned: data and models are versioned and linked",
    2: "reproducible: code and environments are captured and a run was reproduced",
    3: "automated: triggered pipelines, monitoring with alerts, gated promotions",
}


@dataclass(frozen=True, slots=True)
class Criterion:
    """One check: met or not, what was found, and the command that would meet it."""

    level: int
    key: str
    title: str
    met: bool
    evidence: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "key": self.key,
            "title": self.title,
            "met": self.met,
            "evidence": self.evidence,
            "command": self.command,
        }


@dataclass(frozen=True)
class MaturityReport:
    """Every criterion and the highest level whose criteria (and those below) are met
    (-1 when not even level 0 is)."""

    level: int
    criteria: tuple[Criterion, ...] = field(default_factory=tuple)

    @property
    def missing(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.met]

    @property
    def next_steps(self) -> list[Criterion]:
        """The missing criteria of the next level."""
        return [c for c in self.criteria if not c.met and c.level == self.level + 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "description": LEVELS.get(self.level, "no runs yet"),
            "levels": {
                str(n): {
                    "description": text,
                    "met": all(c.met for c in self.criteria if c.level == n),
                }
                for n, text in LEVELS.items()
            },
            "criteria": [c.to_dict() for c in self.criteria],
        }


class MaturityAPI:
    """``Client.maturity()`` (a mixin)."""

    if TYPE_CHECKING:

        def _open(self, *, write: bool) -> LocalBackend: ...

        def search_runs(
            self,
            experiments: Any = None,
            *,
            filter: str | None = None,
            order_by: Any = None,
            max_results: int = 1000,
            page_token: str | None = None,
            parent: str | None = None,
            deleted: Any = "active",
        ) -> RunPage: ...

        def list_datasets(self) -> list[DatasetSummary]: ...

        def list_registered_models(
            self, *, name_like: str | None = None
        ) -> list[RegisteredModel]: ...

        def list_model_versions(
            self, name: str, *, stage: str | None = None
        ) -> list[ModelVersion]: ...

        def list_inputs(self, run_id: str) -> list[RunInput]: ...

        def model_history(self, name: str | None = None, *, limit: int = 1000) -> list[Event]: ...

        def list_firings(
            self, pipeline: str | None = None, *, limit: int = 100
        ) -> list[Firing]: ...

    def maturity(self) -> MaturityReport:
        """Check this workspace against maturity levels 0-3 (see the module)."""
        runs = list(self.search_runs(max_results=RECENT_RUNS, order_by="start_time DESC"))
        criteria = [
            Criterion(
                0,
                "runs",
                "Runs are tracked",
                bool(runs),
                f"{len(runs)}{'+' if len(runs) >= RECENT_RUNS else ''} runs" if runs else "no runs",
                "python train.py   # a script that tracks with `with syllabus.start_run(): ...`",
            ),
            *self._level1(),
            *self._level2(runs),
            *self._level3(),
        ]
        level = -1
        for n in sorted(LEVELS):
            if all(c.met for c in criteria if c.level == n):
                level = n
            else:
                break
        return MaturityReport(level, tuple(criteria))

    # -- level 1 -------------------------------------------------------------------------

    def _level1(self) -> list[Criterion]:
        datasets = self.list_datasets()
        models = self.list_registered_models()
        versions: list[ModelVersion] = []
        for m in models:
            versions.extend(self.list_model_versions(m.name))
        linked = None
        for v in sorted(versions, key=lambda v: v.created_at, reverse=True)[:200]:
            if v.run_id is None:
                continue
            try:
                inputs = self.list_inputs(v.run_id)
            except NotFoundError:
                continue
            data = next((i for i in inputs if i.kind == "dataset"), None)
            if data is not None:
                linked = (v, data)
                break
        return [
            Criterion(
                1,
                "datasets",
                "Data is versioned",
                bool(datasets),
                f"{len(datasets)} datasets" if datasets else "no datasets",
                "syllabus data add NAME PATH",
            ),
            Criterion(
                1,
                "models",
                "Models are registered with versions",
                bool(versions),
                f"{len(versions)} model versions of {len(models)} models"
                if versions
                else "no registered models",
                "in a tracked run: `syllabus.log_model(model, registered_name='NAME')`",
            ),
            Criterion(
                1,
                "lineage",
                "A model version is linked to the dataset version it was trained on",
                linked is not None,
                f"{linked[0].ref} was trained on {linked[1].name}"
                if linked
                else "no model version's run logged a dataset input",
                "in training: `run.log_input(syllabus.data.get('NAME@latest'))`, then "
                "`syllabus.log_model(model, registered_name='NAME')`",
            ),
        ]

    # -- level 2 -------------------------------------------------------------------------

    def _level2(self, runs: list[Any]) -> list[Criterion]:
        backend = self._open(write=False)
        code = 0
        environments = 0
        for run in runs:
            try:
                link = backend.code_store.get_run_link(run.id)
            except (NotFoundError, SyllabusError):
                continue
            code += 1
            environments += link.environment_id is not None
        reproduced = [r for r in runs if r.tags.get("syllabus.reproduces")]
        return [
            Criterion(
                2,
                "code",
                "Runs carry a code snapshot or notebook checkpoint",
                code > 0,
                f"{code} of {len(runs)} recent runs" if code else "no run has its code captured",
                "start runs with `syllabus.start_run()` from a git repository or a folder "
                "(it captures the code; setting capture_code), or `%load_ext syllabus` "
                "in a notebook",
            ),
            Criterion(
                2,
                "environments",
                "Runs carry their Python environment",
                environments > 0,
                f"{environments} of {len(runs)} recent runs"
                if environments
                else "no run has its environment captured",
                "start runs with `syllabus.start_run()` (it captures the environment; "
                "setting capture_code)",
            ),
            Criterion(
                2,
                "reproduced",
                "At least one run was reproduced",
                bool(reproduced),
                f"run {reproduced[0].id[:12]} reproduces "
                f"{reproduced[0].tags['syllabus.reproduces'][:12]}"
                if reproduced
                else "no reproduced run",
                "syllabus reproduce RUN_ID",
            ),
        ]

    # -- level 3 -------------------------------------------------------------------------

    def _level3(self) -> list[Criterion]:
        try:
            firings = [f for f in self.list_firings(limit=100) if f.status == "succeeded"]
            fired = f"{len(firings)} successful firings" if firings else "no trigger has fired"
        except ConfigError as exc:  # a store whose pipelines this client cannot reach
            firings, fired = [], str(exc)
        monitors = self._monitors_with_rules()
        gated = self._gated_promotion()
        return [
            Criterion(
                3,
                "triggered_pipeline",
                "A pipeline ran from a trigger (new data, schedule or alert)",
                bool(firings),
                fired,
                "declare triggers=[on_dataset('NAME')] on a @pipeline, then `syllabus agent`",
            ),
            Criterion(
                3,
                "monitoring",
                "Monitoring with alert rules is active",
                monitors[0],
                monitors[1],
                "syllabus monitor create NAME --service SERVICE --reference DATA "
                "--rule 'drift_share > 0.3'",
            ),
            Criterion(
                3,
                "gated_promotions",
                "Promotions pass through policy gates",
                gated[0],
                gated[1],
                "syllabus policy apply policy.yaml (a policy with gates), then "
                "syllabus models promote NAME@VERSION --to production",
            ),
        ]

    def _monitors_with_rules(self) -> tuple[bool, str]:
        list_monitors: Callable[[], list[Any]] | None = getattr(self, "list_monitors", None)
        list_rules: Callable[[str], list[Any]] | None = getattr(self, "list_alert_rules", None)
        if list_monitors is None or list_rules is None:
            return False, "monitoring is not available in this installation"
        try:
            monitors = list_monitors()
        except SyllabusError as exc:
            return False, f"monitoring could not be read: {exc}"
        with_rules = [m for m in monitors if list_rules(m.name)]
        if not with_rules:
            found = (
                f"{len(monitors)} monitors, none with alert rules" if monitors else "no monitors"
            )
            return False, found
        return True, f"{len(with_rules)} monitors with alert rules ({with_rules[0].name})"

    def _gated_promotion(self) -> tuple[bool, str]:
        for event in reversed(self.model_history(limit=1000)):
            gates = event.details.get("gates") if event.details else None
            if event.event == "promotion_refused" or not gates:
                continue
            declared = [g for g in gates if g.get("gate") not in _BUILT_IN_GATES]
            if declared and all(g.get("passed") for g in gates):
                names = ", ".join(str(g.get("gate")) for g in gates)
                return True, (
                    f"{event.model_name}@{event.version} -> {event.to_stage} passed {names}"
                )
        return False, "no promotion went through a declared gate (policy)"
