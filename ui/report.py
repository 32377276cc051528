"""What a job page hands out as files: its result as JSON, its metric series as CSV, and a
standalone HTML report.

No Streamlit here, so the same files can be made outside the app. The report is one
self-contained page, the Jinja2 template `ui/templates/report.html`: Plotly's JavaScript is
inlined once, and every piece of user text (name, tags, parameters, runner names, notes,
errors, log lines) is escaped by the template's autoescape.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from compute.registry import Kind
from jobstore.models import Status
from jobstore.views import JobDetail, LogLine
from runlab.status import partial_note
from ui import charts
from ui import format as fmt

# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SERIES_COLUMNS = ("series", "step", "value")
TEMPLATE = "report.html"
SECTIONS = ("result", "timeline", "series")
# Autoescape on: every value the template shows is escaped unless it is Markup.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def file_name(job: JobDetail, what: str) -> str:
    """`<id>-<what>`: the id is safe in any file system, a job's name may not be."""
    return f"runlab-{job.id}-{what}"


def result_json(job: JobDetail) -> str:
    """The result exactly as stored, so a download and `runlab show --json` agree."""
    return json.dumps(job.result, indent=2, ensure_ascii=False) + "\n"


def csv_cell(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading quote; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def flat(prefix: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """`{"sigma": 0.3}` as `{"param.sigma": 0.3}`: a number stays a number, a list or a
    table becomes its JSON text."""
    return {
        f"{prefix}.{k}": v
        if v is None or isinstance(v, str | int | float | bool)
        else json.dumps(v, sort_keys=True)
        for k, v in doc.items()
    }


def rows_csv(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> str:
    """Rows of flat values as CSV: the `first` columns, then every other key in the order
    the rows name them; a missing value is an empty cell."""
    header = list(dict.fromkeys([*first, *(k for r in rows for k in r)]))
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else csv_cell(row[c]) for c in header])
    return out.getvalue()


def series_csv(job: JobDetail) -> str:
    """Every point of every metric series, one row each: series, step, value."""
    out = io.StringIO(newline="")
    # RFC 4180's \r\n: with it, a cell holding a lone \r or \n is quoted, so rows stay rows.
    writer = csv.writer(out)
    writer.writerow(SERIES_COLUMNS)
    for name in sorted(job.series):
        steps, values = job.series[name]
        for step, value in zip(steps, values, strict=True):
            writer.writerow([csv_cell(name), _plain(step), _plain(value)])
    return out.getvalue()


def _plain(x: float) -> float | int:
    """Whole steps as integers (1000000, not 1000000.0)."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


def html_report(
    job: JobDetail, kind: Kind | None, *, made_at: datetime, link: str | None = None
) -> str:
    """The job as it is at `made_at`, in one .html file that opens with no server or network."""
    title = kind.title if kind else "kind not installed here"
    figures = _figures(job, kind, made_at)
    return _TEMPLATES.get_template(TEMPLATE).render(
        title=job.name or job.id,
        heading=job.name or "(unnamed job)",
        made_at=fmt.timestamp(made_at),
        link=link if _web(link) else None,
        facts=[
            ("Id", job.id),
            ("Kind", f"{title} ({job.kind})"),
            ("Status", job.outcome + (" (cancel requested)" if job.cancel_requested else "")),
            ("Owner", job.owner or fmt.DASH),
            ("Tags", ", ".join(job.tags) or fmt.DASH),
            ("Seed", _seed(job)),
            ("Progress", fmt.percent(job.progress)),
            ("Submitted", fmt.timestamp(job.created_at)),
            ("Started", fmt.timestamp(job.started_at)),
            ("Finished", fmt.timestamp(job.finished_at)),
            ("Run time", fmt.elapsed(job.started_at, job.finished_at, made_at)),
            ("Attempt", f"{job.attempt} of {job.max_attempts}"),
        ],
        figures={section: figures.get(section, []) for section in SECTIONS},
        outcome=_outcome(job),
        headline=(
            kind.summary(job.result, job.params)
            if kind is not None and job.result is not None
            else None
        ),
        params=json.dumps(job.params, indent=2, ensure_ascii=False),
        versions=list(job.versions.items()),
        attempts=[
            (
                str(a.attempt),
                a.runner_id or "",
                fmt.timestamp(a.started_at),
                fmt.elapsed(a.started_at, a.ended_at),
                a.outcome,
                a.note or "",
            )
            for a in job.attempts
        ],
        stages=[
            (
                s.name,
                s.status,
                fmt.percent(s.progress),
                fmt.timestamp(s.started_at),
                fmt.elapsed(s.started_at, s.finished_at) if s.started_at else fmt.DASH,
            )
            for s in job.stages
        ],
        logs=[_log_line(x) for x in job.logs],
    )


def _figures(job: JobDetail, kind: Kind | None, now: datetime) -> dict[str, list[Markup]]:
    """Each figure as a div; Plotly's JavaScript goes inline with the first one only."""
    wanted: list[tuple[str, go.Figure | None]] = [
        ("result", charts.result_figure(kind, job.result or {}, job.series))
        if job.status is Status.SUCCEEDED
        else ("result", None),
        ("timeline", charts.timeline_figure(job, now=now)),
        ("series", charts.series_figure(job.series)),
    ]
    out: dict[str, list[Markup]] = {}
    inline = True
    for n, (section, fig) in enumerate(wanted):
        if fig is None:
            continue
        # The one markup the template takes as it is: Plotly writes the figure's JSON with
        # `<`, `>` and `/` escaped, so no text of the job can close its script.
        div = Markup(
            pio.to_html(
                fig,
                include_plotlyjs=inline,
                full_html=False,
                config=charts.PLOTLY_CONFIG,
                div_id=f"runlab-chart-{n}",
            )
        )
        out.setdefault(section, []).append(div)
        inline = False
    return out


@dataclass(frozen=True)
class _Outcome:
    """What the job came to: its result, its error, when it was cancelled, or none yet."""

    status: str
    result: str | None = None
    partial: str | None = None  # the sentence that says a result covers part of the work
    error: str | None = None
    traceback: str | None = None
    cancelled_at: str | None = None


def _outcome(job: JobDetail) -> _Outcome:
    status = str(job.status)
    if job.status is Status.SUCCEEDED:
        note = partial_note(job.progress) if job.partial else None
        return _Outcome(job.outcome, result=result_json(job), partial=note)
    if job.status is Status.FAILED:
        err = job.error
        text = f"{err.type}: {err.message}" if err else "The job failed without an error message."
        return _Outcome(status, error=text, traceback=job.traceback or None)
    if job.status is Status.CANCELLED:
        return _Outcome(status, cancelled_at=fmt.timestamp(job.finished_at))
    return _Outcome(status)


def _seed(job: JobDetail) -> str:
    seed = job.params.get("seed", (job.result or {}).get("seed"))
    return fmt.DASH if seed is None else str(seed)


def _log_line(x: LogLine) -> str:
    return f"{fmt.timestamp(x.at)}  {x.level.upper():<7} {x.message}"


def _web(link: str | None) -> bool:
    """Only an http(s) address becomes a link: never a javascript: or data: one."""
    return link is not None and link.startswith(("http://", "https://"))
