"""The model registry (MLflow): which version is champion, and loading a version to score.

Tracking and registry default to SQLite under the data directory with a local artifact
directory (settings.tracking_uri / settings.artifact_location); MLFLOW_TRACKING_URI selects a
server. Registered model `vee-resolution`; aliases `champion` and `challenger` (no stages).
A loaded version carries the per-class auto-apply thresholds chosen when it was trained, so
the nightly run always applies the thresholds of the model it scored with.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd

from vee_tasks.alerting import scrub
from vee_tasks.config import CHAMPION_ALIAS, RESOLUTION_CODES, Settings, get_settings

log = logging.getLogger(__name__)

EXPERIMENT_NAME = "vee-resolution-training"
# Version tags written by training (vee_tasks.training.register).
TAG_THRESHOLDS = "vee.thresholds"
TAG_FEATURE_SCHEMA = "vee.feature_schema"
TAG_KIND = "vee.kind"
TAG_DECISION = "vee.decision"
TAG_REASON = "vee.decision_reason"
# What the weekly run had decided, kept when an operator's `vee model champion` overrides it.
TAG_TRAINING_DECISION = "vee.training_decision"
# The warehouse a version was trained on (vee.warehouse_identity), and the warehouses an
# operator let it score as well (`vee model adopt`): one tag per adopting warehouse.
TAG_WAREHOUSE = "vee.warehouse_id"
TAG_ADOPTED_PREFIX = "vee.adopted_by."


class RegistryError(RuntimeError):
    """The registry cannot give what was asked (message says what and where)."""


class NoChampionError(RegistryError):
    """No version of the registered model carries the alias `champion`."""


class IncompatibleModelError(RegistryError):
    """The version exists but cannot be used: corrupt, or trained for other features/classes."""


@dataclass
class LoadedModel:
    """A registry version ready to score feature frames of vee_tasks.features."""

    name: str
    version: str
    predictor: object  # vee_tasks.training.predictor.ResolutionPredictor
    thresholds: dict[str, float]
    run_id: str | None = None

    @property
    def kind(self) -> str:
        return self.predictor.kind

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """Columns RESOLUTION_CODES (rows sum to 1), index of `features`."""
        return self.predictor.predict_proba(features)


_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str, str], LoadedModel] = {}


def _uris(settings: Settings) -> tuple[str, str]:
    """The tracking and registry URIs as MLflow is given them. MLflow repeats a URI in its
    messages ("API request to ...") and, at the end of each run, printed it to stdout, i.e.
    into the task log, login included (outside review, 2026-11-28): the print is off, and a
    login written in the http(s) URIs goes to MLflow's own variables when that is safe (see
    _login_to_environment)."""
    if settings.tracking_uri.startswith("sqlite:"):
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    return _login_to_environment(settings.tracking_uri,
                                 settings.mlflow_registry_uri or settings.tracking_uri)


_LOGIN_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def _login_to_environment(tracking: str, registry_uri: str) -> tuple[str, str]:
    """Both URIs without their user part, the login in MLFLOW_TRACKING_USERNAME/PASSWORD
    (MLflow sends it as basic auth to every http store of the process): only when every
    http(s) URI of the two carries the same login and the operator has not set those
    variables. Otherwise the URIs stay as given: two servers with two logins, or a login
    on one server only, would send a password to the wrong server (a second review,
    2026-11-28)."""
    http = [urlsplit(u) for u in {tracking, registry_uri}
            if urlsplit(u).scheme in ("http", "https")]
    logins = {p.netloc.rpartition("@")[0] if "@" in p.netloc else None for p in http}
    if not http or len(logins) != 1 or None in logins:
        return tracking, registry_uri
    user, _, password = logins.pop().partition(":")
    user, password = unquote(user), unquote(password)
    given = {k: os.environ.get(k) for k in _LOGIN_ENV}
    if given["MLFLOW_TRACKING_TOKEN"] or (
            given["MLFLOW_TRACKING_USERNAME"]
            and (given["MLFLOW_TRACKING_USERNAME"], given["MLFLOW_TRACKING_PASSWORD"] or "")
            != (user, password)):
        return tracking, registry_uri  # the operator's own login (an earlier call's is ours)
    os.environ["MLFLOW_TRACKING_USERNAME"] = user
    if password:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password

    def bare(uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https"):
            return uri
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    return bare(tracking), bare(registry_uri)


def configure(settings: Settings | None = None):
    """An MlflowClient for this installation's tracking/registry (no global state)."""
    from mlflow import MlflowClient

    tracking, registry_uri = _uris(settings or get_settings())
    return MlflowClient(tracking_uri=tracking, registry_uri=registry_uri)


_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def mlflow_uris(settings: Settings | None = None):
    """MLflow's fluent API (runs, log_model, models:/ URIs) pointed at our registry for the
    block, then restored: MLflow's setters also write os.environ, which would otherwise leak
    into later settings reloads and into subprocesses."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking, registry_uri = _uris(settings or get_settings())
    saved_env = {k: os.environ.get(k) for k in _URI_ENV}
    saved = (getattr(tracking_utils, "_tracking_uri", None),
             getattr(registry_utils, "_registry_uri", None))
    with _LOCK:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        with _LOCK:
            mlflow.set_tracking_uri(saved[0])
            registry_utils._registry_uri = saved[1]
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _first_line(exc: BaseException) -> str:
    """The cause's first line, for our one-line errors: with URL passwords masked, since
    MLflow's own messages repeat the tracking URI as given."""
    text = str(exc).strip()
    return scrub(text.splitlines()[0]) if text else type(exc).__name__


# How the reachability check asks a tracking server, unless the operator set these: once and
# twice more within seconds. MLflow's defaults (7 retries, backoff factor 2, 120 s timeout)
# made a refused connection take 4 minutes per attempt, over 10 minutes with the task's retry
# (outside probe 2026-11-29); the weekly run's later calls keep the defaults.
QUICK_CHECK_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@contextmanager
def _env_defaults(values: dict[str, str]):
    """`values` in the environment for the block where the operator has not set them."""
    unset = [key for key in values if key not in os.environ]
    for key in unset:
        os.environ[key] = values[key]
    try:
        yield
    finally:
        for key in unset:
            os.environ.pop(key, None)


def check_reachable(settings: Settings | None = None) -> None:
    """RegistryError when the registry does not answer: the weekly run asks first, before
    building features and training two models that it could then not register or compare
    (an outside probe saw the failure come after both had trained)."""
    settings = settings or get_settings()
    try:
        with _env_defaults(QUICK_CHECK_ENV):
            configure(settings).search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure to answer
        raise RegistryError(
            f"registry at {settings.tracking_uri_shown} did not answer: {_first_line(exc)}"
        ) from None


def check_champion_readable(settings: Settings | None = None) -> None:
    """RegistryError when the champion's files cannot be read: the weekly run could compare
    no challenger with it, and found that out only after training both candidates, then again
    on the task's retry (outside probe 2026-11-29). No champion, or one that is unusable
    (corrupt, another feature schema), is no error: the run may then promote its model."""
    settings = settings or get_settings()
    try:
        version = resolve_champion_version(settings)
    except NoChampionError:
        return
    try:
        load_model_version(version, settings)
    except IncompatibleModelError:
        return
    except RegistryError as exc:
        raise RegistryError(
            f"champion v{version} cannot be read, so no model could be compared with it: {exc}; "
            "restore its files, or make a readable version champion (`vee model champion N`)"
        ) from None


def is_missing(exc) -> bool:
    """MLflow's 'no such model/version/alias', as opposed to an unreachable registry."""
    code = getattr(exc, "error_code", None)
    if code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc):
        return True  # the SQL store's "Registered model alias champion not found."
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "404" in str(code)


def ensure_experiment(settings: Settings | None = None) -> str:
    """The training experiment's id, created with the local artifact location if new."""
    settings = settings or get_settings()
    client = configure(settings)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    # A local registry (SQLite, the default) keeps artifacts under the data directory, never
    # in the working directory; a tracking server decides its own artifact store.
    remote = settings.tracking_uri.startswith(("http:", "https:", "databricks"))
    location = None if remote else settings.artifact_location
    return client.create_experiment(EXPERIMENT_NAME, artifact_location=location)


def resolve_champion_version(settings: Settings | None = None) -> str:
    """The version number (as text) that carries alias `champion`."""
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    name = settings.registered_model_name
    try:
        client = configure(settings)  # a SQL store connects (and migrates) here
        version = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException as exc:
        if not is_missing(exc):
            raise RegistryError(
                f"registry at {settings.tracking_uri_shown} did not answer: {_first_line(exc)}"
            ) from None
        raise NoChampionError(
            f"no model {name!r} with alias {CHAMPION_ALIAS!r} in the registry at "
            f"{settings.tracking_uri_shown}: {_why_no_champion(client, name)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a registry store's own error (its database down)
        # in one clean line: its text may repeat a store URL with a password; the cause stays
        # in __context__, so a connection error is still retried as transient
        raise RegistryError(
            f"registry at {settings.tracking_uri_shown} did not answer: {_first_line(exc)}"
        ) from None
    return str(version.version)


def _why_no_champion(client, name: str) -> str:
    """What the operator should do: train, or see why the versions trained so far were not
    promoted (a weekly run that ran but declined is not fixed by running it again as is)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        versions = []
    if not versions:
        return "no version is registered yet; run `vee train` or the weekly DAG first"
    latest = max(versions, key=lambda v: int(v.version))
    tags = latest.tags or {}
    promoted = [v for v in versions if (v.tags or {}).get(TAG_DECISION) in ("champion", "replaced")]
    if tags.get(TAG_DECISION) == "challenger" and not promoted:
        return (f"{len(versions)} version(s) registered and none promoted: the latest, "
                f"v{latest.version}, is a challenger because {tags.get(TAG_REASON) or 'no reason recorded'}")
    # the champion's version deleted, or the alias removed: "none promoted" was false
    # (outside probe 2026-11-29)
    before = max(promoted, key=lambda v: int(v.version)) if promoted else latest
    return (f"{len(versions)} version(s) registered but none carries the alias (the champion's "
            f"version deleted, or the alias removed?): make one champion with `vee model "
            f"champion N` (v{before.version} was {'champion' if promoted else 'the latest'}), "
            "or run the weekly DAG")


# The words of a weekly decision that held a model back below the per-rule baseline
# (training.pipeline.promotion_decision).
BELOW_BASELINE = "does not beat the per-rule baseline"


def newest_training(settings: Settings | None = None,
                    warehouse_id: str | None = None) -> dict | None:
    """{"version", "as_of"} of the registered version of this warehouse trained as of the
    latest date (None when none records one): with no champion, a weekly run as of an
    earlier date must not make itself the champion ahead of it (outside probe 2026-11-29:
    after the champion's version was deleted, a backfilled old week became champion as the
    "first model")."""
    settings = settings or get_settings()
    try:
        versions = configure(settings).search_model_versions(
            f"name='{settings.registered_model_name}'")
    except Exception as exc:  # noqa: BLE001 - the store down: not "no version"
        raise RegistryError(
            f"registry at {settings.tracking_uri_shown} did not answer: {_first_line(exc)}"
        ) from None
    # not a version held back below the baseline: it could never be champion, and would keep
    # a new installation's backfilled weeks from becoming it (review 2026-11-29)
    dated = [v for v in versions if (v.tags or {}).get("vee.as_of")
             and foreign_to(v.tags, warehouse_id) is None
             and not ((v.tags or {}).get(TAG_DECISION) == "challenger"
                      and BELOW_BASELINE in ((v.tags or {}).get(TAG_REASON) or ""))]
    if not dated:
        return None
    newest = max(dated, key=lambda v: (v.tags["vee.as_of"], int(v.version)))
    return {"version": str(newest.version), "as_of": newest.tags["vee.as_of"]}


def foreign_to(tags: dict | None, warehouse_id: str | None) -> str | None:
    """The other warehouse a version was trained on when it is not `warehouse_id`'s own
    model (trained there, or adopted by it); None when it is, or when either is unknown (a
    version registered before versions recorded it)."""
    tags = tags or {}
    trained_on = tags.get(TAG_WAREHOUSE)
    if not trained_on or not warehouse_id or trained_on == warehouse_id:
        return None
    if tags.get(TAG_ADOPTED_PREFIX + warehouse_id):
        return None
    return trained_on


def adopt_version(version: str, warehouse_id: str, settings: Settings | None = None) -> None:
    """Let a version trained on another warehouse score this one (an operator's decision,
    e.g. a model trained on a staging copy; the bench's model, trained on a small warehouse).
    Its own warehouse keeps it."""
    settings = settings or get_settings()
    version_info(version, settings)  # a clear error for a version that does not exist
    configure(settings).set_model_version_tag(
        settings.registered_model_name, str(version), TAG_ADOPTED_PREFIX + warehouse_id, "true")


def make_champion(version: str, settings: Settings | None = None) -> None:
    """Move alias `champion` to `version`: an operator's rollback (the next nightly run
    scores with it). The version's decision tags say who decided."""
    from vee_tasks.config import CHALLENGER_ALIAS

    settings = settings or get_settings()
    version_info(version, settings)  # a clear error for a version that does not exist
    client = configure(settings)
    name = settings.registered_model_name
    version = str(version)
    # read as the nightly run will (never from the cache): a rollback onto a version whose
    # files are gone or that does not fit this code failed only at the next night's first
    # shard, mid-incident (outside probe 2026-11-29)
    try:
        _download_predictor(name, version, settings)
    except Exception as exc:  # noqa: BLE001 - whatever stops it loading
        raise RegistryError(f"version {version} not made champion: "
                            f"{exc if isinstance(exc, RegistryError) else _first_line(exc)}") from None
    try:
        previous = str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except Exception as exc:  # noqa: BLE001 - no champion yet
        if not is_missing(exc):
            raise
        previous = None
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    replaced = previous is not None and previous != version
    _operator_decision(client, name, version, "champion",
                       f"made champion by an operator (vee model champion) on {when}"
                       + (f", replacing v{previous}" if replaced else ""))
    if replaced:
        # the old champion's tags said "champion" beside the alias on another version
        # (outside probe, 2026-11-28)
        _operator_decision(client, name, previous, "replaced",
                           f"replaced as champion by v{version} by an operator "
                           f"(vee model champion) on {when}")
    try:
        if str(client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER_ALIAS)
    except Exception as exc:  # noqa: BLE001 - no challenger alias: nothing to clear
        if not is_missing(exc):
            raise


def _operator_decision(client, name: str, version: str, decision: str, reason: str) -> None:
    """Tag an operator's decision on a version, keeping the weekly run's own decision and
    reason once in TAG_TRAINING_DECISION (a rollback overwrote why it had been promoted or
    held back)."""
    tags = client.get_model_version(name, version).tags or {}
    if TAG_TRAINING_DECISION not in tags and TAG_REASON in tags \
            and "by an operator" not in tags[TAG_REASON]:
        client.set_model_version_tag(name, version, TAG_TRAINING_DECISION,
                                     f"{tags.get(TAG_DECISION, '?')}: {tags[TAG_REASON]}")
    client.set_model_version_tag(name, version, TAG_DECISION, decision)
    client.set_model_version_tag(name, version, TAG_REASON, reason)


def version_info(version: str, settings: Settings | None = None):
    """The MLflow ModelVersion entity (tags, run id, aliases)."""
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    client = configure(settings)
    name = settings.registered_model_name
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if not is_missing(exc):
            raise RegistryError(
                f"registry at {settings.tracking_uri_shown} did not answer: {_first_line(exc)}"
            ) from None
        raise RegistryError(
            f"model {name!r} has no version {version!r} in the registry at "
            f"{settings.tracking_uri_shown} ({_first_line(exc)})"
        ) from None


def _download_predictor(name: str, version: str, settings: Settings):
    """The version's predictor, read from its files: meta.json, a skops or .keras file.

    Never through `mlflow.pyfunc.load_model`: that runs the Python file stored with the
    version (the model-from-code entry), so anyone able to write the registry's artifacts
    could run code on the workers, which hold the warehouse's credentials. The entry stays
    in the artifact for `mlflow models serve`; scoring reads only data.
    """
    import tempfile
    from pathlib import Path

    import mlflow.artifacts
    import yaml

    from vee_tasks.training.predictor import (
        MODEL_DIR_ARTIFACT,
        ModelFormatError,
        ResolutionPredictor,
    )

    with tempfile.TemporaryDirectory(prefix="vee-model-") as tmp, mlflow_uris(settings), \
            _no_progress_bars():
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp)).resolve()
        except Exception as exc:  # noqa: BLE001 - the artifact store, not the model
            # not IncompatibleModelError: a store that is down says nothing about the
            # model, and training would then promote past a champion it could not read
            raise RegistryError(
                f"model {name} version {version}: its files could not be downloaded from "
                f"the registry at {settings.tracking_uri_shown}: {_first_line(exc)}"
            ) from None
        if not (local / "MLmodel").is_file():
            # files gone from the store (moved, expired, a mount missing): not a verdict on
            # the model, as for a download that fails
            raise RegistryError(
                f"model {name} version {version}: the registry at {settings.tracking_uri_shown} has "
                "no files for it (no MLmodel in its artifacts)"
            )
        try:
            spec = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8"))
            relative = spec["flavors"]["python_function"]["artifacts"][MODEL_DIR_ARTIFACT]["path"]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise ModelFormatError(f"no {MODEL_DIR_ARTIFACT} artifact in its MLmodel ({exc!r})") from None
        model_dir = (local / str(relative)).resolve()
        if not model_dir.is_relative_to(local):
            raise ModelFormatError(f"{MODEL_DIR_ARTIFACT} points outside the model: {relative!r}")
        return ResolutionPredictor.load(model_dir)  # reads every file before tmp goes


@contextmanager
def _no_progress_bars():
    """MLflow draws a "Downloading artifacts" bar on stderr, which Airflow logs as ERROR lines
    in every shard's log (outside probe, 2026-11-27): off for the block, then restored."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    saved = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def load_model_version(version: str, settings: Settings | None = None) -> LoadedModel:
    """Load a registered version; IncompatibleModelError if it is corrupt or does not fit."""
    from vee_tasks.training.predictor import ModelFormatError

    settings = settings or get_settings()
    name = settings.registered_model_name
    version = str(version)
    key = (settings.tracking_uri, name, version)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    info = version_info(version, settings)
    try:
        predictor = _download_predictor(name, version, settings)
    except ModelFormatError as exc:
        raise IncompatibleModelError(f"model {name} version {version} is unusable: {exc}") from None
    except RegistryError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing files, bad MLmodel, import errors
        cause = exc
        while cause.__cause__ is not None and not isinstance(cause, ModelFormatError):
            cause = cause.__cause__
        raise IncompatibleModelError(
            f"model {name} version {version} cannot be loaded: {scrub(str(cause))}"
        ) from None
    thresholds = {c: float(predictor.thresholds.get(c, 2.0)) for c in RESOLUTION_CODES}
    tagged = info.tags.get(TAG_THRESHOLDS)
    if tagged and json.loads(tagged) != thresholds:
        log.warning("version %s: thresholds tag differs from the artifact; using the artifact", version)
    loaded = LoadedModel(
        name=name, version=version, predictor=predictor, thresholds=thresholds, run_id=info.run_id
    )
    with _LOCK:
        _CACHE[key] = loaded
    return loaded


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
