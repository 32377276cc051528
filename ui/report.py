"""What a job page hands out as files: its result as JSON, its metric series as CSV, and a
standalone HTML report.

No Streamlit here, so the same files can be made outside the app. The report is one
self-contained page: Plotly's JavaScript is inlined once, and every piece of user text
(name, tags, parameters, runner names, notes, errors, log lines) goes through `html.escape`.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime

import plotly.graph_objects as go
import plotly.io as pio

from compute.registry import Kind
from jobstore.models import Status
from jobstore.views import JobDetail, LogLine
from ui import charts
from ui import format as fmt

# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SERIES_COLUMNS = ("series", "step", "value")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1f2328; }
h1 { margin-bottom: .2rem; overflow-wrap: anywhere; }
h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
.snapshot { color: #59636e; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; white-space: pre-wrap;
      overflow-wrap: anywhere; }
.error { color: #b42318; }
"""


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
    e = html.escape
    title = kind.title if kind else "kind not installed here"
    figures = _figures(job, kind, made_at)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Runlab report · {e(job.name or job.id)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(job.name or '(unnamed job)')}</h1>",
        f'<p class="snapshot">Report made at {e(fmt.timestamp(made_at))}: an immutable '
        "snapshot of the job at that moment."
        + (f' The live page is <a href="{e(link)}">{e(link)}</a>.' if _web(link) else "")
        + "</p>",
        _table(
            [
                ("Id", job.id),
                ("Kind", f"{title} ({job.kind})"),
                (
                    "Status",
                    str(job.status) + (" (cancel requested)" if job.cancel_requested else ""),
                ),
                ("Owner", job.owner or fmt.DASH),
                ("Tags", ", ".join(job.tags) or fmt.DASH),
                ("Seed", _seed(job)),
                ("Progress", fmt.percent(job.progress)),
                ("Submitted", fmt.timestamp(job.created_at)),
                ("Started", fmt.timestamp(job.started_at)),
                ("Finished", fmt.timestamp(job.finished_at)),
                ("Run time", fmt.elapsed(job.started_at, job.finished_at, made_at)),
                ("Attempt", f"{job.attempt} of {job.max_attempts}"),
            ]
        ),
        "<h2>Result</h2>",
        *figures.get("result", []),
        _outcome(job),
        "<h2>Parameters</h2>",
        _pre(json.dumps(job.params, indent=2, ensure_ascii=False)),
        "<h3>Versions it ran with</h3>",
        _table(list(job.versions.items())) if job.versions else "<p>Not recorded yet.</p>",
        "<h2>Timeline</h2>",
        *figures.get("timeline", []),
        "<h3>Attempts</h3>",
        _attempts(job),
        "<h3>Stages</h3>",
        _stages(job),
        "<h2>Metric series</h2>",
        *(figures.get("series") or ["<p>The job reported no metric series.</p>"]),
        f"<h2>Log · last {len(job.logs)} lines</h2>",
        _pre("\n".join(_log_line(x) for x in job.logs)) if job.logs else "<p>No log lines.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _figures(job: JobDetail, kind: Kind | None, now: datetime) -> dict[str, list[str]]:
    """Each figure as a div; Plotly's JavaScript goes inline with the first one only."""
    wanted: list[tuple[str, go.Figure | None]] = [
        ("result", charts.result_figure(kind, job.result or {}, job.series))
        if job.status is Status.SUCCEEDED
        else ("result", None),
        ("timeline", charts.timeline_figure(job, now=now)),
        ("series", charts.series_figure(job.series)),
    ]
    out: dict[str, list[str]] = {}
    inline = True
    for n, (section, fig) in enumerate(wanted):
        if fig is None:
            continue
        div = pio.to_html(
            fig,
            include_plotlyjs=inline,
            full_html=False,
            config=charts.PLOTLY_CONFIG,
            div_id=f"runlab-chart-{n}",
        )
        out.setdefault(section, []).append(div)
        inline = False
    return out


def _outcome(job: JobDetail) -> str:
    e = html.escape
    if job.status is Status.SUCCEEDED:
        return _pre(result_json(job))
    if job.status is Status.FAILED:
        err = job.error
        text = f"{err.type}: {err.message}" if err else "The job failed without an error message."
        trace = _pre(job.traceback) if job.traceback else ""
        return f'<p class="error">{e(text)}</p>{trace}'
    if job.status is Status.CANCELLED:
        return f"<p>Cancelled at {e(fmt.timestamp(job.finished_at))}.</p>"
    return f"<p>No result yet: the job was {e(str(job.status))} when this report was made.</p>"


def _seed(job: JobDetail) -> str:
    seed = job.params.get("seed", (job.result or {}).get("seed"))
    return fmt.DASH if seed is None else str(seed)


def _attempts(job: JobDetail) -> str:
    if not job.attempts:
        return "<p>Not started yet.</p>"
    return _table(
        [
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
        header=("Attempt", "Runner", "Started", "Took", "Outcome", "Note"),
    )


def _stages(job: JobDetail) -> str:
    if not job.stages:
        return "<p>No stages.</p>"
    return _table(
        [
            (
                s.name,
                s.status,
                fmt.percent(s.progress),
                fmt.timestamp(s.started_at),
                fmt.elapsed(s.started_at, s.finished_at) if s.started_at else fmt.DASH,
            )
            for s in job.stages
        ],
        header=("Stage", "Status", "Progress", "Started", "Took"),
    )


def _log_line(x: LogLine) -> str:
    return f"{fmt.timestamp(x.at)}  {x.level.upper():<7} {x.message}"


def _table(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Rows of text as a table; every cell escaped."""
    e = html.escape
    head = "<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>" if header else ""
    if header:
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    else:  # a key-value table: the key is a header cell
        body = "".join(
            "<tr>" + f"<th>{e(r[0])}</th>" + "".join(f"<td>{e(c)}</td>" for c in r[1:]) + "</tr>"
            for r in rows
        )
    return f"<table>{head}{body}</table>"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _web(link: str | None) -> bool:
    """Only an http(s) address becomes a link: never a javascript: or data: one."""
    return link is not None and link.startswith(("http://", "https://"))
