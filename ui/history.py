"""The history on /jobs: its controls, its page of rows and what can be done to a selection.

Every control is bound to the URL (`?q=…&status=…&sort=…&after=…`), so a link reopens the
same view. Any change of filter or sort starts again at the first page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import streamlit as st
from sqlalchemy import Engine

from compute import intake, registry
from compute.registry import FieldInfo
from jobstore import enqueue, labels, queries, retention, sweeps, transitions
from jobstore import history as store_history
from jobstore.history import SORTS, BadCursor, Cursor, HistoryPage, Sort
from jobstore.search import InvalidQuery, Query, check_text, describe, parse
from runlab.artifacts import ArtifactStore
from runlab.errors import Forbidden, InvalidParams, JobNotFound
from runlab.identity import Actor
from runlab.status import OUTCOMES
from ui import confirm, report, tables
from ui import format as fmt
from ui.job_view import CONFIRM_CANCEL_AFTER
from ui.text import md_escape, one_line

PAGE_SIZE = 25
CURSOR = "after"
PREVIOUS = "history.previous"  # this session's cursors of the pages before this one
NOTICE = "history.notice"
log = logging.getLogger(__name__)
TAG_TEXT = "history.tag_text"
ACTED = "history.acted"  # bumped by each action on a selection, which then starts afresh
CONFIRM = "history.confirm_delete"  # the ids a delete waits to be confirmed for
CONFIRM_RERUN = "history.confirm_rerun"  # the ids a re-run of several waits to be confirmed for
# The ids a cancel waits to be confirmed for, with the ticked jobs that have run long.
CONFIRM_CANCEL = "history.confirm_cancel"
QUESTIONS = (CONFIRM, CONFIRM_RERUN, CONFIRM_CANCEL)  # one dialog at a time
ORDERS = ["newest first", "oldest first"]
SEARCH_HELP = """Terms are joined by *and*:

- `kind:option_pricing` · `status:succeeded,failed` · `tag:q3` · `owner:me` · `queue:img` · `id:…`
- `created>=7d` (ages: 90m, 12h, 7d, 2w) · `created:2026-11-20` · `created<2026-11-01`
- a parameter or result field: `sigma>=0.3` · `price>12` · `method:BCa` · `partial=true`;
  `param.x` or `result.x` say which
- any other word, or a "quoted phrase", must be in the name
"""
EXAMPLE = "kind:option_pricing sigma>=0.3 price>12 status:succeeded tag:q3"


@dataclass(frozen=True)
class View:
    """What the controls ask for; `error` is a search that could not be parsed."""

    query: Query
    sort: Sort
    descending: bool
    error: InvalidQuery | None
    filtered: bool
    asked: str  # the controls' values as typed: ages in a search resolve anew on every run


def _first_page() -> None:
    """Any new filter or sort starts again at the first page."""
    st.query_params.pop(CURSOR, None)
    st.session_state[PREVIOUS] = []


SWEEP = "sweep"  # /jobs?sweep=<id>: the children of one sweep, as the search's sweep:<id>

FILTERS: dict[str, object] = {
    "q": "",
    "status": [],
    "kind": [],
    "owner": "",
    "tag": "",
    "name": "",
    "created": (),
    "queue": [],
    "mine": False,
}


def clear() -> None:
    """Back to every job: the filters' widgets, and with them their URL parameters."""
    for key, empty in FILTERS.items():
        st.session_state[key] = empty  # a bound widget takes its URL parameter with it
    st.query_params.pop(SWEEP, None)
    _first_page()


def controls(me: str, queues: Sequence[str] = ()) -> View:
    """The search box, the filters, the sort and "My jobs", all bound to the URL; a queue
    filter too, where the settings name more than one queue."""
    kinds = [k.name for k in registry.all_kinds()]
    common = {"bind": "query-params", "on_change": _first_page}
    text = st.text_input(
        "Search",
        key="q",
        placeholder=EXAMPLE,
        help=SEARCH_HELP,
        max_chars=1000,
        **common,
    )
    left, middle, right, last = st.columns([3, 3, 2, 2])
    statuses = left.multiselect(
        "Status", list(OUTCOMES), key="status", placeholder="any status", **common
    )
    chosen_kinds = middle.multiselect("Kind", kinds, key="kind", placeholder="any kind", **common)
    owner = right.text_input("Owner", key="owner", placeholder="anyone", max_chars=100, **common)
    tag = last.text_input(
        "Tag", key="tag", placeholder="any tag", max_chars=enqueue.MAX_TAG_LENGTH, **common
    )
    left, middle, right, last = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
    name = left.text_input("Name contains", key="name", max_chars=200, **common)
    created = middle.date_input(
        "Created between", value=(), key="created", format="YYYY-MM-DD", **common
    )
    sort = right.selectbox("Sort by", list(SORTS), key="sort", **common)
    order = last.selectbox("Order", ORDERS, key="order", **common)
    chosen_queues: list[str] = []
    if len(queues) > 1:
        left, right = st.columns([3, 7], vertical_alignment="bottom")
        chosen_queues = left.multiselect(
            "Queue", list(queues), key="queue", placeholder="any queue", **common
        )
        toggle_at = right
    else:
        toggle_at = st.container()
    mine = toggle_at.toggle(
        "My jobs", key="mine", help=f"Only jobs whose owner is {md_escape(me)}", **common
    )

    widgets = Query(
        statuses=frozenset(statuses) if statuses else None,
        kinds=frozenset(chosen_kinds) if chosen_kinds else None,
        owners=frozenset({me}) if mine else None,
        tags=(tag.strip(),) if tag.strip() else (),
        words=(name.strip(),) if name.strip() else (),
        queues=frozenset(chosen_queues) if chosen_queues else None,
    )
    if owner.strip():
        widgets = widgets & Query(owners=frozenset({owner.strip()}))
    of_sweep = st.query_params.get(SWEEP, "")
    if of_sweep:
        widgets = widgets & Query(sweeps=frozenset({of_sweep}))
    zone = fmt.browser_zone()
    days = [d for d in (created or ()) if d is not None]
    if days:
        start = datetime.combine(days[0], time(), zone)
        end = datetime.combine(days[-1], time(), zone) + timedelta(days=1)
        widgets = widgets & Query(created_from=start, created_to=end)
    # A link can carry any text in these boxes: refuse what the store cannot compare (a NUL,
    # say, which PostgreSQL rejects) as a bad search is, on either backend.
    error = _bad_filter({"Owner": owner, "Tag": tag, "Name contains": name})
    searched = Query()
    if error is None and text.strip():
        keys = {f for k in registry.all_kinds() for f in k.params.model_fields}
        try:
            searched = parse(text, kinds=kinds, param_keys=keys, me=me)
        except InvalidQuery as exc:
            error = exc
    query = widgets & searched
    if query.groups_sweeps:
        query = query & Query(grouped=True)
    return View(
        query=query,
        sort=sort if sort in SORTS else "created",  # type: ignore[arg-type]
        descending=order != ORDERS[1],
        error=error,
        filtered=not query.empty,
        asked=repr(
            [
                text,
                statuses,
                chosen_kinds,
                owner,
                tag,
                name,
                created,
                chosen_queues,
                mine,
                sort,
                of_sweep,
            ]
        )
        + order,
    )


def _bad_filter(values: dict[str, str]) -> InvalidQuery | None:
    """The first text filter holding a control character, as an error pointing at it."""
    for label, value in values.items():
        try:
            check_text(value, f"the {label} filter")
        except InvalidQuery as exc:
            return exc
    return None


def search_error(error: InvalidQuery) -> None:
    """What was wrong, with a caret under the token, in a code block that shows it as typed."""
    st.error(f"The search was not run: {md_escape(error.message)}.", icon=":material/search_off:")
    st.code(error.pointer(), language=None)


def understood(engine: Engine, view: View) -> None:
    swept = view.query.sweeps
    chips = describe(view.query, sweeps.names(engine, swept) if swept else None)
    if chips:
        # Chips hold user text: escape what Markdown would read.
        st.caption("Showing jobs where " + "; ".join(md_escape(c) for c in chips))


def read(engine: Engine, view: View) -> HistoryPage:
    """The page the URL points at; a cursor that does not parse, does not fit this sort, or
    names a job that is gone, is dropped with a note and the first page is shown."""

    def page(after: Cursor | None) -> HistoryPage:
        return store_history.history(
            engine,
            view.query,
            sort=view.sort,
            descending=view.descending,
            after=after,
            limit=PAGE_SIZE,
        )

    raw = st.query_params.get(CURSOR)
    try:
        return page(Cursor.decode(raw) if raw else None)
    except BadCursor:
        st.query_params.pop(CURSOR, None)
        st.warning("That page link is not valid (out of date or edited); here is the first page.")
        return page(None)


def _go_next(cursor: str) -> None:
    st.session_state.setdefault(PREVIOUS, []).append(st.query_params.get(CURSOR, ""))
    st.query_params[CURSOR] = cursor


def _go_back() -> None:
    stack = st.session_state.get(PREVIOUS) or [""]
    previous = stack.pop()
    if previous:
        st.query_params[CURSOR] = previous
    else:
        st.query_params.pop(CURSOR, None)


def pager(page: HistoryPage) -> None:
    """Previous and next, by keyset: page 40,000 costs what page 1 does."""
    deep = bool(st.query_params.get(CURSOR))
    number = len(st.session_state.get(PREVIOUS) or []) + 1
    first, back, caption, forward = st.columns([1, 1, 3, 1], vertical_alignment="center")
    first.button(
        "First page",
        icon=":material/first_page:",
        on_click=_first_page,
        disabled=not deep,
        key="history.first",
    )
    back.button(
        "Previous",
        icon=":material/chevron_left:",
        on_click=_go_back,
        disabled=not st.session_state.get(PREVIOUS),
        key="history.previous_page",
    )
    shown = f"page {number}" if st.session_state.get(PREVIOUS) or not deep else "a later page"
    caption.caption(f"{len(page.rows)} jobs on {shown}")
    forward.button(
        "Next",
        icon=":material/chevron_right:",
        on_click=_go_next,
        args=(page.next.encode() if page.next else "",),
        disabled=page.next is None,
        key="history.next",
    )


def value_columns(view: View) -> list[tuple[str, str]]:
    """(source, key) of the fields a view shows as columns: each one its search tests, then,
    when it holds one kind, that kind's headline result fields."""
    wanted = [(t.source, t.key) for t in view.query.fields]
    if view.query.kinds is not None and len(view.query.kinds) == 1:
        (only,) = view.query.kinds
        kind = registry.find(only)
        if kind is not None:
            wanted += [("result", k) for k in kind.headline]
    return list(dict.fromkeys(wanted))


def _column_label(source: str, key: str, params: Mapping[str, FieldInfo]) -> str:
    """A parameter by its form label, where one kind names it; a result field by its words."""
    info = params.get(key) if source == "params" else None
    return info.label if info is not None else fmt.label(key)


def table(engine: Engine, page: HistoryPage, view: View) -> list[str]:
    """The rows, with a checkbox each, and a column for each field the view names; the ids of
    those ticked.

    The selection is kept per view and page, and dropped after every action: ticks never
    apply to the rows that another filter, page or a re-run puts in the same places.
    """
    where = repr((view.asked, st.query_params.get(CURSOR, ""), st.session_state.get(ACTED, 0)))
    digest = hashlib.sha256(where.encode()).hexdigest()[:12]
    wanted = value_columns(view)
    values = store_history.values_of(engine, [r.id for r in page.rows]) if wanted else {}
    params = registry.fields_of(registry.all_kinds()) if wanted else {}
    extra = [
        tables.ValueColumn(
            f"{source}.{key}",
            _column_label(source, key, params),
            {
                job: (doc[0] if source == "params" else doc[1]).get(key)
                for job, doc in values.items()
            },
        )
        for source, key in wanted
    ]
    rows = sweeps.rows_of(engine, [r.id for r in page.rows]) if view.query.grouped else {}
    ticked = tables.selectable_job_table(
        page.rows, key="history", selection_key=digest, extra=extra, sweeps=rows
    )
    # A ticked sweep is every job of it: what is done to the row is done to each of them.
    return [
        job
        for row in ticked
        for job in (sweeps.children(engine, rows[row].public_id) if row in rows else [row])
    ]


def selection_bar(
    engine: Engine, artifacts: ArtifactStore, selected: list[str], who: Actor
) -> None:
    """What can be done to the ticked rows. Cancel, tag and delete act on the rows `who` may
    act on, and say which of the rest were refused and why; anyone may re-run any job."""
    me = who.name
    n = len(selected)
    st.caption(
        f"{n} selected"
        if n
        else "Tick rows to compare, cancel, re-run, tag, delete or export them."
    )
    if not n:
        return
    cols = st.columns(6)
    if cols[0].button(
        "Compare",
        icon=":material/compare_arrows:",
        disabled=not 2 <= n <= 10,
        help="Side by side: 2 to 10 jobs.",
        key="history.compare",
    ):
        st.switch_page("pages/compare.py", query_params={"ids": ",".join(selected)})
    cols[1].button(
        "Cancel",
        icon=":material/cancel:",
        on_click=_ask_cancel,
        args=(engine, selected, who),
        help="Asks first when a ticked job has run for over a minute.",
        key="history.cancel",
    )
    cols[2].button(
        "Re-run",
        icon=":material/replay:",
        on_click=_rerun if n == 1 else _ask,
        args=(engine, selected, me) if n == 1 else (CONFIRM_RERUN, selected),
        help="A new job each, with the same parameters and seed; several ask first.",
        key="history.rerun",
    )
    with cols[3].popover("Tag", icon=":material/sell:"):
        st.text_input("Tag", key=TAG_TEXT, max_chars=enqueue.MAX_TAG_LENGTH)
        st.button(
            "Add to selected",
            on_click=_retag,
            args=(engine, selected, True, who),
            key="history.tag_add",
        )
        st.button(
            "Remove from selected",
            on_click=_retag,
            args=(engine, selected, False, who),
            key="history.tag_remove",
        )
    cols[4].download_button(
        "Export CSV",
        data=lambda: export_csv(engine, selected),
        file_name="runlab-jobs.csv",
        mime="text/csv",
        icon=":material/download:",
        key="history.export",
        on_click="ignore",
    )
    cols[5].button(
        "Delete",
        icon=":material/delete:",
        on_click=_ask,
        args=(CONFIRM, selected),
        key="history.delete",
    )
    if st.session_state.get(CONFIRM):
        _confirm_delete(engine, artifacts, st.session_state[CONFIRM], who)
    elif st.session_state.get(CONFIRM_RERUN):
        _confirm_rerun(engine, st.session_state[CONFIRM_RERUN], me)
    elif st.session_state.get(CONFIRM_CANCEL):
        _confirm_cancel(engine, *st.session_state[CONFIRM_CANCEL], who)


def _ask(question: str, value: object) -> None:
    """Open the dialog of `question` (one of QUESTIONS), closing any other."""
    for key in QUESTIONS:
        st.session_state.pop(key, None)
    st.session_state[question] = value


def _forget() -> None:
    for key in QUESTIONS:
        st.session_state.pop(key, None)


def _close_once_answered(question: str) -> None:
    """A click in a dialog reruns only the dialog: once its callback has answered the
    question, rerun the page, which closes the dialog and shows what changed."""
    if not st.session_state.get(question):
        st.rerun()


def _refused(engine: Engine, ids: list[str], who: Actor, what: str) -> tuple[list[str], str]:
    """The ids `who` may act on, and a sentence naming the others and why they are refused."""
    owners = queries.owners(engine, ids)
    mine = [i for i in ids if i not in owners or who.may_act_on(owners[i])]
    others = sorted({owners[i] for i in ids if i in owners and not who.may_act_on(owners[i])})
    refused = len(ids) - len(mine)
    if not refused:
        return mine, ""
    named = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    return mine, (f"refused {refused}: only a job's owner ({named}) or an admin may {what} it")


def _ask_cancel(engine: Engine, ids: list[str], who: Actor) -> None:
    """Cancel at once, unless a ticked job has run for over a minute: its work would be lost.

    Read at the click, as the rows on show may be older than a job's start."""
    long = [
        (job.id, job.name, job.duration_seconds or 0.0)
        for job in queries.running_among(engine, ids)
        if (job.duration_seconds or 0.0) > CONFIRM_CANCEL_AFTER
    ]
    if long:
        _ask(CONFIRM_CANCEL, (list(ids), long))
    else:
        _cancel(engine, ids, who)


def _cancel(engine: Engine, ids: list[str], who: Actor) -> None:
    _forget()
    mine, refusal = _refused(engine, ids, who, "cancel")
    outcomes: dict[str, int] = {}
    for job_id in mine:
        try:  # the store checks again: a job the read let through is still refused there
            outcome = transitions.request_cancel(engine, job_id, actor=who)
        except (Forbidden, JobNotFound):
            continue
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    words = {
        transitions.CancelOutcome.CANCELLED: "cancelled",
        transitions.CancelOutcome.REQUESTED: "asked to stop",
        transitions.CancelOutcome.ALREADY_FINISHED: "had already finished",
    }
    parts = [f"{n} {words[o]}" for o, n in outcomes.items()]
    if refusal:
        parts.append(refusal)
    _done("; ".join(parts) or "Nothing to cancel.")


def _rerun(engine: Engine, ids: list[str], me: str) -> None:
    _forget()
    made = [intake.rerun(engine, job_id, owner=me) for job_id in ids]
    _done(f"Queued {len(made)} new job(s) with the same parameters and seed.")


def _retag(engine: Engine, ids: list[str], add: bool, who: Actor) -> None:
    # Read here, not passed in: the text typed just before the click is in the state already.
    tag = st.session_state.get(TAG_TEXT, "")
    mine, refusal = _refused(engine, ids, who, "tag")
    try:
        n = (labels.add_tag if add else labels.remove_tag)(engine, mine, tag, actor=who)
    except InvalidParams as exc:
        st.session_state[NOTICE] = (
            f"{'Not tagged' if add else 'Nothing removed'}: {exc.errors['tag']}"
        )
        return
    note = f"Tagged {n} job(s)" if add else f"Removed the tag from {n} job(s)"
    _done(f"{note}; {refusal}." if refusal else f"{note}.")


def _delete(engine: Engine, artifacts: ArtifactStore, ids: list[str], who: Actor) -> None:
    st.session_state.pop(CONFIRM, None)
    mine, refusal = _refused(engine, ids, who, "delete")
    report, kept = retention.delete_jobs(engine, artifacts, mine, actor=who)
    log.info("%s deleted %d job(s): %s", who.name or "the operator", report.jobs, mine)
    note = f"Deleted {report.jobs} job(s)"
    if kept:
        note += f"; kept {len(kept)} that had not finished"
    if refusal:
        note += f"; {refusal}"
    _done(note + ".")


def _keep() -> None:
    st.session_state.pop(CONFIRM, None)


@st.dialog("Re-run jobs", on_dismiss=_forget)
def _confirm_rerun(engine: Engine, ids: list[str], me: str) -> None:
    """Several new jobs at once are worth a second look; one re-run is a single click."""
    _close_once_answered(CONFIRM_RERUN)
    st.write(
        f"Re-run {len(ids)} jobs? Each is queued again as a new job, with the same kind, "
        "parameters and seed."
    )
    confirm.yes_or_no(
        yes=f"Re-run {len(ids)} jobs",
        icon=":material/replay:",
        on_yes=_rerun,
        args=(engine, ids, me),
        no="Don't re-run",
        on_no=_forget,
        key="history.rerun",
    )


@st.dialog("Cancel jobs", on_dismiss=_forget)
def _confirm_cancel(
    engine: Engine, ids: list[str], long: list[tuple[str, str, float]], who: Actor
) -> None:
    """Names the ticked jobs that have run long, and for how long: the work a yes loses."""
    _close_once_answered(CONFIRM_CANCEL)
    runs = [
        f"**{md_escape(one_line(name, 60))}** ({md_escape(public_id)}), running for "
        f"{fmt.duration_in_a_sentence(ran)}"
        for public_id, name, ran in long
    ]
    if len(ids) == 1:
        st.markdown(f"Cancel {runs[0]}? Its work so far will be lost.")
    else:
        some = (
            "1 of them has been running for over a minute; its work so far will be lost"
            if len(long) == 1
            else f"{len(long)} of them have been running for over a minute; their work so far "
            "will be lost"
        )
        st.markdown(f"Cancel {len(ids)} jobs? {some}:\n\n" + "\n".join(f"- {run}" for run in runs))
    confirm.yes_or_no(
        yes="Yes, cancel",
        icon=":material/cancel:",
        on_yes=_cancel,
        args=(engine, ids, who),
        no="Keep it running" if len(ids) == 1 else "Keep them",
        on_no=_forget,
        key="history.cancel",
    )


@st.dialog("Delete jobs", on_dismiss=_keep)
def _confirm_delete(engine: Engine, artifacts: ArtifactStore, ids: list[str], who: Actor) -> None:
    """Asked in a dialog; the choice is a callback, so it holds whatever reruns next."""
    _close_once_answered(CONFIRM)
    st.write(
        f"Delete {len(ids)} job(s) with their results, metrics, logs and files? "
        "This cannot be undone. Queued and running jobs are kept: cancel them first."
    )
    confirm.yes_or_no(
        yes="Delete",
        icon=":material/delete_forever:",
        on_yes=_delete,
        args=(engine, artifacts, ids, who),
        no="Keep them",
        on_no=_keep,
        key="history.delete",
    )


def _done(note: str) -> None:
    st.session_state[NOTICE] = note
    st.session_state[ACTED] = st.session_state.get(ACTED, 0) + 1


def notice() -> None:
    if NOTICE in st.session_state:
        st.toast(st.session_state.pop(NOTICE), icon=":material/done_all:")


CSV_COLUMNS = [
    "id", "name", "kind", "status", "owner", "tags", "created_at", "started_at", "finished_at",
]  # fmt: skip


def export_csv(engine: Engine, ids: list[str]) -> str:
    """The selected jobs, one flat column per parameter (`param.sigma`) and result field
    (`result.price`), numbers as numbers; text that a spreadsheet would run as a formula is
    quoted."""
    rows = [
        {
            **{c: row[c] for c in CSV_COLUMNS},
            **report.flat("param", row["params"]),
            **report.flat("result", row["result"]),
        }
        for row in store_history.export(engine, ids)
    ]
    return report.rows_csv(rows, CSV_COLUMNS)
