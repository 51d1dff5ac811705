"""The nightly scoring of one read date without a scheduler (`vee score --read-date D`).

The same step functions as the DAG (`vee_tasks.scoring.steps`), in the same order (the usage
rollup after the extract, where the DAG runs them side by side), shards one after the other. A failure marks the run record FAILED (DQ_FAILED for data quality) and is
raised again.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.engine import Engine

from vee_tasks.config import Settings, get_settings
from vee_tasks.scoring import steps
from vee_tasks.scoring.steps import ScoringRun

log = logging.getLogger(__name__)

__all__ = ["ScoringRun", "score_read_date", "default_run_id"]


def default_run_id(read_date: dt.date) -> str:
    """One run id per read date: running `vee score` again for a date reruns that run (its
    record, report folder and rows are replaced), it does not add another."""
    return f"cli__{read_date.isoformat()}"


def score_read_date(
    engine: Engine,
    read_date: dt.date,
    run_id: str | None = None,
    settings: Settings | None = None,
) -> ScoringRun:
    """Score every decidable exception of read_date; returns the run record."""
    settings = settings or get_settings()
    run_id = run_id or default_run_id(read_date)
    steps.start_run(engine, run_id, read_date)
    try:
        version = steps.resolve_champion(engine, run_id, settings)
        steps.extract(engine, run_id, read_date, settings)
        steps.refresh_usage_rollup(engine, run_id, read_date, settings)
        shards = steps.validate(engine, run_id, read_date, settings)
        from vee_tasks.registry import load_model_version

        model = load_model_version(version, settings)  # loaded once here; each DAG shard loads its own
        for shard in shards:
            steps.score_shard(engine, run_id, read_date, shard, version, settings, model=model)
        steps.finish_run(engine, run_id, settings)
    except Exception as exc:
        # Steps mark permanent failures themselves; this catches transient ones, which the
        # DAG would retry but a one-shot command cannot.
        try:
            from vee_tasks.scoring.errors import short_reason

            steps.mark_failed(engine, run_id, short_reason(exc))
        except Exception:  # noqa: BLE001
            log.exception("could not mark run %s failed", run_id)
        raise
    return ScoringRun.load(engine, run_id)
