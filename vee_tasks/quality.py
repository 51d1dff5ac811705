"""Great Expectations (GX Core) suites from expectations/*.json, run on a DataFrame.

One harness (`run_checkpoint`) for training (suite `training_set`, through `run_suite`) and
nightly scoring (`vee_tasks.scoring.validation`). Each run uses an ephemeral context (no GX
project on disk), validates the frame against the suite loaded from JSON and builds Data
Docs HTML into the run's own `report_dir`, so an operator can open
`<report_dir>/index.html` for that run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vee_tasks.config import EXPECTATIONS_DIR

log = logging.getLogger(__name__)


class DataQualityError(RuntimeError):
    """A suite failed; the message lists the failed expectations and the report path."""

    def __init__(self, message: str, result: "QualityResult"):
        super().__init__(message)
        self.result = result


@dataclass
class QualityResult:
    suite_name: str
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)
    report_dir: Path | None = None
    docs_index: Path | None = None
    result_json: Path | None = None

    def describe(self) -> str:
        """The outcome; its first line (an alert's subject, the UI's one-line error) names
        the first failed expectation, the lines after list them all."""
        state = "passed" if self.success else f"FAILED {len(self.failed)}/{self.evaluated}"
        if self.failed:
            state += f": {self.failed[0]}"
            if len(self.failed) > 1:
                state += f" and {len(self.failed) - 1} more"
        where = f" (report {self.docs_index or self.report_dir})" if self.report_dir else ""
        lines = [f"suite {self.suite_name}: {state}{where}"]
        lines += [f"  - {f}" for f in self.failed]
        return "\n".join(lines)



_HTML_SPECIAL = r"[<>&\"']"


def html_safe_text(values: pd.Series) -> pd.Series:
    """Text as GX's Data Docs may show it: they print a failing value into the page as raw
    HTML, so a value from the warehouse holding markup must be escaped first (escaping is
    one-to-one, and plain codes and ids are unchanged, so no check's outcome moves). Only
    the values that need it are touched: a million plain codes cost one vectorised scan."""
    import html

    if isinstance(values.dtype, pd.StringDtype):
        special = values.str.contains(_HTML_SPECIAL, regex=True).fillna(False).astype(bool)
    else:  # object: text mixed with None, numbers, bytes...
        is_text = values.map(lambda v: isinstance(v, str)).astype(bool)
        special = pd.Series(False, index=values.index)
        if is_text.any():
            special[is_text] = values[is_text].astype(str).str.contains(_HTML_SPECIAL, regex=True)
    if not special.any():
        return values
    text = values.astype(object)
    out = text.copy()
    out[special] = [html.escape(v, quote=True) for v in text[special]]
    return out


def html_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text column passed through html_safe_text (a copy when any changed)."""
    changed = {}
    for column in df.columns:
        if df[column].dtype == object or pd.api.types.is_string_dtype(df[column].dtype):
            safe = html_safe_text(df[column])
            if safe is not df[column]:
                changed[column] = safe
    return df.assign(**changed) if changed else df


def load_suite_spec(suite_name: str) -> dict:
    path = EXPECTATIONS_DIR / f"{suite_name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _describe_expectation(res) -> str:
    config = res.expectation_config
    kwargs = {k: v for k, v in (config.kwargs or {}).items() if k not in ("batch_id",)}
    column = kwargs.pop("column", None)
    observed = (res.result or {}).get("observed_value")
    unexpected = (res.result or {}).get("unexpected_count")
    detail = []
    if observed is not None:
        detail.append(f"observed {observed!r}")
    if unexpected:
        detail.append(f"{unexpected} unexpected")
    target = f"{column}: " if column else ""
    return f"{target}{config.type} {kwargs}" + (f" ({', '.join(detail)})" if detail else "")


def quiet_gx_loggers() -> None:
    """GX logs a line per expectation type it registers on import: set before importing."""
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def fresh_report_dir(report_dir: Path) -> None:
    """The run's report folder, emptied: a retried or rerun run writes the same folder, and
    an earlier attempt's pages or failed_rows.csv must not sit beside the new result."""
    import shutil

    if report_dir.is_dir():
        shutil.rmtree(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)


def _remove_ephemeral_site(context) -> None:
    """An ephemeral GX context makes a temp dir for its default docs site; we never use it."""
    import shutil
    import tempfile

    try:
        sites = context.variables.data_docs_sites or {}
        base = (sites.get("local_site") or {}).get("store_backend", {}).get("base_directory")
        if base and Path(base).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve()):
            shutil.rmtree(base, ignore_errors=True)
    except Exception:  # noqa: BLE001 - housekeeping only
        log.debug("could not remove GX's ephemeral docs directory", exc_info=True)


def run_checkpoint(
    frame: pd.DataFrame,
    suite_spec: dict,
    report_dir: Path | None,
    result_format: dict,
    run_name: str | None = None,
):
    """The one GX harness of training and nightly scoring: validate `frame` (already HTML-safe,
    see html_safe_frame) with `suite_spec` in an ephemeral context (no GX project on disk),
    building Data Docs into a freshly emptied `report_dir` when given. Returns GX's
    validation result for the suite."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    quiet_gx_loggers()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX hashes every value of a pandas batch under 1 GB (its module constant) for one
    # informational batch marker, "pandas_data_fingerprint": ~1 s of a nightly's million
    # rows, on validate's critical path. Nothing reads the marker; runs are keyed by their
    # run id. A GX without the constant or the module just hashes again.
    try:
        from great_expectations.execution_engine import pandas_execution_engine

        pandas_execution_engine.HASH_THRESHOLD = 0
    except ImportError:
        log.debug("GX's pandas engine moved: its batches are fingerprinted again")

    name = suite_spec["name"]
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions = []
    if report_dir is not None:
        fresh_report_dir(report_dir)
        context.add_data_docs_site(
            site_name="vee_reports",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(report_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["vee_reports"]))
    batch_definition = (
        context.data_sources.add_pandas(name="frames")
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(**{k: suite_spec[k] for k in ("name", "expectations", "meta") if k in suite_spec})
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{name}_checkpoint",
            validation_definitions=[definition],
            actions=actions,
            result_format=result_format,
        )
    )
    run_id = RunIdentifier(run_name=re.sub(r"[^A-Za-z0-9_.-]+", "_", run_name)[:120]) if run_name else None
    try:
        result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
    finally:
        _remove_ephemeral_site(context)
    (validation,) = result.run_results.values()
    return validation


def run_suite(
    df: pd.DataFrame,
    suite_name: str,
    report_dir: Path | str | None = None,
    suite_spec: dict | None = None,
) -> QualityResult:
    """Validate `df` with expectations/<suite_name>.json (or `suite_spec`); never raises on
    failing expectations: the caller decides what a failure stops (DataQualityError)."""
    spec = dict(suite_spec or load_suite_spec(suite_name))
    spec["name"] = suite_name
    report_dir = Path(report_dir) if report_dir is not None else None
    validation = run_checkpoint(html_safe_frame(df), spec, report_dir, {"result_format": "SUMMARY"})
    failed = [_describe_expectation(r) for r in validation.results if not r.success]
    result = QualityResult(
        suite_name=suite_name,
        success=bool(validation.success),
        evaluated=len(validation.results),
        failed=failed,
    )
    if report_dir is not None:
        result.report_dir = report_dir
        result.result_json = report_dir / f"{suite_name}_result.json"
        result.result_json.write_text(json.dumps(validation.to_json_dict(), indent=2, default=str))
        index = report_dir / "index.html"
        result.docs_index = index if index.exists() else None
    log.info(result.describe())
    return result
