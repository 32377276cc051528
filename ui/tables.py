"""Lists of jobs as dataframes: the one table the home page and /jobs both draw.

A dataframe shows every cell as plain text, so names typed by users need no escaping here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd
import streamlit as st

from compute import registry
from jobstore.sweeps import Row as SweepRow
from jobstore.views import JobSummary
from ui import badges, palette
from ui import format as fmt

Column = Literal[
    "position",
    "job",
    "id",
    "status",
    "kind",
    "owner",
    "queue",
    "stage",
    "progress",
    "moved",
    "created",
    "duration",
]
# "Last progress" beside the duration: a job whose progress stopped moving shows it at a glance.
# Each list opens with the job's name, a link to its page.
RUNNING_COLUMNS: list[Column] = ["job", "kind", "stage", "progress", "moved", "duration"]
HISTORY_COLUMNS: list[Column] = ["job", "status", "kind", "owner", "created", "duration", "id"]
ROW_PX, HEADER_PX = 35, 38  # a dataframe's rows, and its header with the frame
# The link is relative, so that it also works under a server.baseUrlPath.
LINK_PREFIX = "job?id="
SWEEP_LINK_PREFIX = "sweep?id="


def job_link(public_id: str, name: str = "") -> str:
    """The job page's address; the name rides in the fragment, which the browser keeps to
    itself, for the table to show as the link's text (its regex decodes what it captures)."""
    link = f"{LINK_PREFIX}{public_id}"
    return f"{link}#{quote(name, safe='')}" if name else link


def kind_title(name: str) -> str:
    """The kind's title ("Option pricing"), or its name where it is not installed here."""
    kind = registry.find(name)
    return kind.title if kind is not None else name


def _config() -> dict[str, Any]:
    return {
        "position": st.column_config.NumberColumn("Position", format="%d", width="small"),
        "job": st.column_config.LinkColumn(
            "Job", display_text=r"#(.*)$", width="medium", help="The job's name: open its page"
        ),
        "id": st.column_config.TextColumn(
            "ID", width="small", help="What `runlab show` and the links take"
        ),
        "status": st.column_config.TextColumn("Status", width=95),
        "kind": st.column_config.TextColumn("Kind", width=130),
        "owner": st.column_config.TextColumn("Owner", width="small"),
        "queue": st.column_config.TextColumn("Queue", width="small"),
        "stage": st.column_config.TextColumn("Stage", width="small"),
        "progress": st.column_config.ProgressColumn(
            "Progress", min_value=0.0, max_value=1.0, format="percent", width="medium"
        ),
        "moved": st.column_config.TextColumn(
            "Last progress", width="medium", help="When the progress last moved"
        ),
        "created": st.column_config.TextColumn("Created", width="medium"),
        "duration": st.column_config.TextColumn("Duration", width="small"),
    }


def _row(job: JobSummary, now: datetime, zone: tzinfo) -> dict[str, Any]:
    return {
        "job": job_link(job.id, job.name),
        "id": job.id,
        "status": badges.status_text(job.status, job.partial),
        "name": job.name,
        "kind": kind_title(job.kind),
        "owner": job.owner,
        "queue": job.queue,
        "stage": job.stage or "",
        "progress": job.progress,
        "moved": fmt.ago(job.progress_at, now) if job.progress_at else "",
        "created": fmt.when(job.created_at, zone, now),
        "duration": fmt.elapsed(job.started_at, job.finished_at, now),
    }


def _styled(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """The rows as a frame whose status cells wear their status's colour, as badges do."""
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys([*columns, *(rows[0] if rows else [])])))
    if "status" not in frame.columns:
        return frame
    return frame.style.map(_status_colour, subset=["status"])


def _status_colour(value: object) -> str:
    hex_ = palette.STATUS_HEX.get(str(value))
    return f"color: {hex_}; font-weight: 600" if hex_ else ""


def job_table(
    jobs: Sequence[JobSummary],
    columns: Sequence[Column],
    *,
    positions: Mapping[str, int] | None = None,
    key: str | None = None,
) -> None:
    """Draw `jobs` with the given columns, in the given order; `positions` maps id to place.

    `key` names the table's container, which tests and CSS can find it by.
    """
    now = datetime.now(UTC)
    zone = fmt.browser_zone()
    rows = [_row(job, now, zone) for job in jobs]
    if positions is not None:
        for row, job in zip(rows, jobs, strict=True):
            row["position"] = positions.get(job.id)
    with st.container(key=key):
        st.dataframe(
            _styled(rows, columns),
            column_order=list(columns),
            column_config={c: cfg for c, cfg in _config().items() if c in columns},
            hide_index=True,
        )


@dataclass(frozen=True)
class ValueColumn:
    """A column of one field of the jobs' parameters or results, by job id."""

    key: str  # "params.sigma", "result.price"
    label: str
    values: Mapping[str, Any]


def _value_config(col: ValueColumn) -> Any:
    shown = [v for v in col.values.values() if v is not None]
    if shown and all(isinstance(v, int | float) and not isinstance(v, bool) for v in shown):
        return st.column_config.NumberColumn(col.label, format="%.6g", width=_width(col.label))
    return st.column_config.TextColumn(col.label, width=_width(col.label))


def _width(label: str) -> int:
    """Wide enough for the column's label: its values are short numbers, its label may not be."""
    return max(80, 8 * len(label) + 24)


def _cell(value: Any) -> Any:
    """A number as itself, for the column to sort and format; anything else as short text."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return str(value)[:200]


def selectable_job_table(
    jobs: Sequence[JobSummary],
    *,
    key: str,
    selection_key: str = "",
    extra: Sequence[ValueColumn] = (),
    sweeps: Mapping[str, SweepRow] | None = None,
) -> list[str]:
    """The history's table, with a tick box per row, a column per `extra` field, and a
    failed job's error when the page holds one; as tall as its rows, so the page scrolls and
    the table never does. A job in `sweeps` is drawn as its sweep: its name links to the sweep's
    page and its status is the sweep's progress. The ids of the jobs of the ticked rows."""
    now = datetime.now(UTC)
    zone = fmt.browser_zone()
    rows = [_row(job, now, zone) for job in jobs]
    for row, job in zip(rows, jobs, strict=True):
        sweep = (sweeps or {}).get(job.id)
        if sweep is not None:
            row["job"] = f"{SWEEP_LINK_PREFIX}{sweep.public_id}#" + quote(
                f"{sweep.name} · sweep of {sweep.children:,}", safe=""
            )
            row["status"] = f"{sweep.ended:,}/{sweep.children:,} ended"
            row["id"] = sweep.public_id
            row["duration"] = fmt.elapsed(sweep.started_at, sweep.finished_at, now)
    columns: list[str] = list(HISTORY_COLUMNS)
    config: dict[str, Any] = {c: cfg for c, cfg in _config().items() if c in HISTORY_COLUMNS}
    if any(job.error_line for job in jobs):
        columns.insert(columns.index("job") + 1, "error")
        config["error"] = st.column_config.TextColumn("Error", width="medium")
        for row, job in zip(rows, jobs, strict=True):
            row["error"] = job.error_line or ""
    for col in extra:
        columns.insert(columns.index("owner"), col.key)
        config[col.key] = _value_config(col)
        for row, job in zip(rows, jobs, strict=True):
            row[col.key] = _cell(col.values.get(job.id))
    with st.container(key=key):
        event = st.dataframe(
            _styled(rows, columns),
            column_order=columns,
            column_config=config,
            height=HEADER_PX + ROW_PX * max(1, len(rows)),
            hide_index=True,
            on_select="rerun",
            selection_mode="multi-row",
            key=f"{key}.table.{selection_key}",
        )
    rows = event.selection.rows if event is not None else []
    return [jobs[i].id for i in rows if 0 <= i < len(jobs)]
