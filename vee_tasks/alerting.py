"""Tell a person when a run failed or a data-quality gate was breached.

Channels (either, both or none, from settings): a webhook (`VEE_ALERT_WEBHOOK_URL`, a JSON
POST) and email through Airflow's SMTP provider (`VEE_ALERT_EMAIL` recipients, server from the
Airflow connection `VEE_ALERT_SMTP_CONN_ID`, default `smtp_default`, e.g.
`AIRFLOW_CONN_SMTP_DEFAULT=smtp://relay:25?disable_ssl=true&disable_tls=true`).

An alert must never make things worse: every function here logs and returns instead of
raising into the task, and the text it sends is scrubbed of credentials (a database error
message can carry a connection URL).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from vee_tasks.config import NIGHTLY_DAG_ID, Settings, get_settings

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@\s]*)@")
_KEY_VALUE_SECRET = re.compile(
    r"(?i)\b(?P<key>\w*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)|authorization)"
    r"(?P<sep>\s*[=:]\s*|\"\s*:\s*\")(?P<value>(?:(?i:bearer|basic|token)\s+)?[^\s&,;\"']+)"
)


def scrub(text: str | None) -> str:
    """Text with URL passwords and key=value secrets masked, cut to a readable length."""
    if not text:
        return ""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    text = _KEY_VALUE_SECRET.sub(lambda m: f"{m['key']}{m['sep']}***", text)
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return text


def _safe_target(url: str) -> str:
    """Where a webhook points, for logs: scheme, host and port only (paths hold tokens, the
    user part a password). Never the text of a parse error: urllib quotes the URL in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:  # e.g. "https://user:secret@host/...": the secret read as a port
        return "(a webhook URL that does not parse)"
    if parts.scheme not in ("http", "https") or not host:
        return "(a webhook URL without http(s)://host)"
    return f"{parts.scheme}://{host}{':' + str(port) if port else ''}"


@dataclass(frozen=True)
class Alert:
    """What every channel sends."""

    event: str  # "task_failed", "dag_failed", "dq_breach" or "dq_warning"
    dag_id: str
    run_id: str | None
    read_date: str | None
    reason: str
    link: str | None = None
    task_id: str | None = None
    sent_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )

    def payload(self) -> dict:
        data = asdict(self)
        data["reason"] = scrub(self.reason)
        data["link"] = scrub(self.link) or None
        data["system"] = "vee"
        return data

    def subject(self) -> str:
        what = {"task_failed": "task failed", "dag_failed": "run failed",
                "dq_breach": "data-quality gate breached",
                "dq_warning": "data-quality warning"}.get(self.event, self.event)
        first_line = scrub(self.reason).splitlines()[0][:120] if self.reason else ""
        return f"[VEE] {self.dag_id} {self.read_date or ''}: {what} - {first_line}".strip()

    def html(self) -> str:
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in self.payload().items() if v is not None and k != "link"
        )
        link = self.payload()["link"]
        anchor = f"<p><a href='{html.escape(link)}'>{html.escape(link)}</a></p>" if link else ""
        return f"<html><body><h3>{html.escape(self.subject())}</h3><table>{rows}</table>{anchor}</body></html>"


# --- channels --------------------------------------------------------------------------


def _post_webhook(alert: Alert, url: str, timeout: float) -> bool:
    """POST the alert; False when it was not delivered. The log names the target by
    _safe_target only: urllib's errors may quote the whole URL, token and password included
    (outside review, 2026-11-28), so of an error only its kind is logged."""
    target = _safe_target(url)
    if not target.startswith(("http://", "https://")):
        log.error("alert webhook not sent: %s (VEE_ALERT_WEBHOOK_URL)", target)
        return False
    body = json.dumps(alert.payload()).encode("utf-8")
    try:
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "vee-alerting"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
            if not ok:
                log.error("alert webhook %s answered HTTP %s", target, response.status)
            return ok
    except urllib.error.HTTPError as exc:
        log.error("alert webhook %s answered HTTP %s", target, exc.code)
    except Exception as exc:  # noqa: BLE001 - never raise into the task
        log.error("alert webhook %s unreachable: %s", target, _error_kind(exc))
    return False


def _error_kind(exc: BaseException) -> str:
    """An error's type and, for a socket error, its strerror: what an operator needs
    (refused, timed out, name not known) without the message, which may quote a URL."""
    reason = getattr(exc, "reason", None)  # URLError wraps the socket's error
    inner = reason if isinstance(reason, BaseException) else exc
    detail = getattr(inner, "strerror", None) or (
        "timed out" if isinstance(inner, TimeoutError) else None)
    kind = type(inner).__name__
    return f"{kind}: {detail}" if detail else kind


def _send_email(alert: Alert, recipients: str, settings: Settings) -> bool:
    try:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=settings.alert_smtp_conn_id) as hook:
            hook.send_email_smtp(
                to=recipients,
                subject=alert.subject(),
                html_content=alert.html(),
                from_email=hook.from_email or settings.alert_email_from,
            )
        return True
    except Exception as exc:  # noqa: BLE001 - never raise into the task
        log.error("alert email via connection %r failed: %s", settings.alert_smtp_conn_id,
                  scrub(f"{type(exc).__name__}: {exc}"))
        return False


def send_alert(alert: Alert, settings: Settings | None = None) -> dict[str, bool]:
    """Send through every configured channel; returns {channel: delivered}. Never raises."""
    results: dict[str, bool] = {}
    try:
        settings = settings or get_settings()
        if settings.alert_webhook_url:
            results["webhook"] = _post_webhook(alert, settings.alert_webhook_url,
                                               settings.alert_timeout_seconds)
        if settings.alert_email:
            results["email"] = _send_email(alert, settings.alert_email, settings)
        if not results:
            log.warning("no alert channel configured (VEE_ALERT_WEBHOOK_URL, VEE_ALERT_EMAIL); "
                        "alert not sent: %s", alert.subject())
        else:
            log.info("alert %s sent: %s", alert.subject(), results)
    except Exception:  # noqa: BLE001
        log.exception("alerting failed")
    return results


# --- what the DAGs and the scoring code call -------------------------------------------


def warn_data_quality(dag_id: str, run_id: str | None, read_date: str | None, reason: str,
                      report_path: str | None, settings: Settings | None = None) -> dict[str, bool]:
    """A run that went on but that an operator should look at (an empty day after busy days:
    has the MDMS raised it?): the channels a failure uses, as event `dq_warning`. A green run
    in the Airflow UI says nothing of it otherwise."""
    return send_alert(Alert(event="dq_warning", dag_id=dag_id, run_id=run_id, read_date=read_date,
                            reason=reason, link=report_path), settings)



def _ui_link(dag_id: str, run_id: str | None) -> str | None:
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:  # noqa: BLE001
        base = "http://localhost:8080/"
    if not run_id:
        return f"{base.rstrip('/')}/dags/{dag_id}"
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{run_id}"


def _read_date_from(context, settings: Settings, dag_id: str) -> str | None:
    """The date the run is about: the nightly's read date, the weekly's as-of date, by the
    same mappings the tasks use (a manual nightly trigger scores yesterday: the alert said
    today)."""
    from vee_tasks.dates import nightly_read_date, weekly_as_of

    dag_run = context.get("dag_run")
    known = {"logical_date": context.get("logical_date") or getattr(dag_run, "logical_date", None),
             "data_interval_start": context.get("data_interval_start"),
             "data_interval_end": context.get("data_interval_end"), "dag_run": dag_run}
    mapping = nightly_read_date if dag_id == NIGHTLY_DAG_ID else weekly_as_of
    try:
        return mapping(known, settings.timezone).isoformat()
    except (AttributeError, KeyError, TypeError):  # no dates in the context at all
        return None


# How a data-quality gate names its report in its message (scoring.steps.validate,
# quality.QualityResult.describe): "... (report /path/to/index.html)".
_REPORT_IN_MESSAGE = re.compile(r"\(report ([^()\s]+)\)")


def _report_named_by(exception) -> str | None:
    """The report path a data-quality gate's message names, along the chain of causes."""
    seen = 0
    while exception is not None and seen < 5:
        found = _REPORT_IN_MESSAGE.search(str(exception))
        if found:
            return found.group(1)
        exception = exception.__cause__
        seen += 1
    return None


# Exceptions of a data-quality gate: a GX suite, or too many training labels with codes
# outside the contract (training.pipeline.InvalidLabelsError). By name: this module imports
# neither GX nor the training code.
DATA_QUALITY_ERRORS = ("DataQualityError", "InvalidLabelsError")


def is_data_quality_failure(exception) -> bool:
    """A data-quality gate stopped the task (one of DATA_QUALITY_ERRORS, possibly wrapped by
    the DAG's AirflowFailException)."""
    seen = 0
    while exception is not None and seen < 5:
        if type(exception).__name__ in DATA_QUALITY_ERRORS or str(exception).startswith(
                DATA_QUALITY_ERRORS):
            return True
        exception = exception.__cause__
        seen += 1
    return False


def alert_from_context(context, settings: Settings | None = None) -> Alert:
    """Build the alert from an Airflow callback context (task- or DAG-level)."""
    settings = settings or get_settings()
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = (getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
              or getattr(dag, "dag_id", None) or "unknown")
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None)
    task_id = getattr(ti, "task_id", None)
    exception = context.get("exception")
    if exception is not None:
        reason = f"{type(exception).__name__}: {exception}"
    else:
        reason = str(context.get("reason") or "failed")
    link = None
    if ti is not None:
        try:
            link = ti.log_url
        except Exception:  # noqa: BLE001
            link = None
    event = "task_failed" if task_id else "dag_failed"
    if is_data_quality_failure(exception):
        event = "dq_breach"
        # the gate's message names its Data Docs: what the reader of the alert needs first
        link = _report_named_by(exception) or link
    return Alert(
        event=event,
        dag_id=str(dag_id),
        run_id=run_id,
        read_date=_read_date_from(context, settings, str(dag_id)),
        reason=reason,
        link=link or _ui_link(str(dag_id), run_id),
        task_id=task_id,
    )


def on_failure(context) -> None:
    """Airflow `on_failure_callback` (task-level via default_args, or DAG-level)."""
    try:
        settings = get_settings()
        send_alert(alert_from_context(context, settings), settings)
    except Exception:  # noqa: BLE001 - a callback must not raise
        log.exception("failure alert could not be built")
