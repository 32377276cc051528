"""Retention: remove old finished jobs with everything that belongs to them.

A job's age is counted from `finished_at`, when it ended, so a long run is not purged the moment
it finishes. A finished job always has that time (`runlab doctor` checks it); `created_at`
stands in only for a row that lacks it. Queued and running jobs are never purged.

A purge goes through the due jobs in batches, each deleted in its own short transaction, so
runners writing meanwhile wait for one batch at most, not for the whole purge. The job's child
rows (stages, events, metrics, result) are deleted explicitly, before the job: the foreign keys
do cascade, but explicit deletes give the counts and leave no orphan on a connection that
lacks SQLite's `foreign_keys` pragma.

Files go before rows: a job's artifact folder is removed first, then its rows. A purge that
dies between the two leaves a job without files, which the next purge finishes, never files
without a job. Uploads (`uploads/<sha256>`) are shared by every job made from the same bytes,
so one is removed only after its rows are gone and no remaining job and no preset names its
SHA-256.

Each purge also sweeps `uploads/` for what no job ever came to name: an upload kept by a form
or the CLI whose job was never submitted goes once no job (of any status) and no preset names
it and it is older than UNUSED_UPLOAD_AGE (a day: time enough to submit what was uploaded),
and a write's `.tmp` left by a killed process goes once older than STALE_TMP_AGE.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    and_,
    cast,
    delete,
    func,
    not_,
    select,
    text,
)

from jobstore.engine import db_later, is_postgres, reading
from jobstore.models import (
    Job,
    JobEvent,
    JobMetric,
    JobResult,
    JobStage,
    Preset,
    Sweep,
    table_of,
)
from runlab.artifacts import SHA256, TEMPORARY, ArtifactStore, StoredFile

# Parsed in runlab/, where the settings check them too; named here for the store's callers.
from runlab.identity import SYSTEM, Actor
from runlab.purge_policy import MAX_AGE as MAX_AGE
from runlab.purge_policy import PURGEABLE, Policy, format_age
from runlab.purge_policy import parse_age as parse_age
from runlab.purge_policy import parse_statuses as parse_statuses

log = logging.getLogger(__name__)

jobs = table_of(Job)
presets = table_of(Preset)
sweeps_t = table_of(Sweep)
# Each child table with the report field its deleted rows count towards.
CHILDREN = (
    (table_of(JobStage), "stages"),
    (table_of(JobEvent), "events"),
    (table_of(JobMetric), "metrics"),
    (table_of(JobResult), "results"),
)

BATCH_SIZE = 500
# Between two batches, so that a SQLite writer polling on busy_timeout gets its turn.
PAUSE_SECONDS = 0.05
# An upload no job or preset names is removed once this old: a form keeps a file the moment it
# is picked, and a person may take a while to submit it.
UNUSED_UPLOAD_AGE = timedelta(days=1)
# A write's `.tmp` this old belongs to no write still going: a 50 MB upload takes seconds.
STALE_TMP_AGE = timedelta(minutes=30)
# Every upload SHA-256 that rows of `table` name, at any depth of their JSON, in one statement.
# On SQLite, a text test skips the rows with no upload before any JSON is parsed.
_NAMED_SQLITE = """
SELECT DISTINCT t.value FROM {table} AS r, json_tree(r.params) AS t
WHERE r.params LIKE '%"sha256"%' AND t.key = 'sha256' AND t.type = 'text'
"""
_NAMED_POSTGRES = """
SELECT DISTINCT s #>> '{{}}' FROM {table} AS r,
LATERAL jsonb_path_query(r.params, 'strict $.**.sha256') AS s
WHERE jsonb_typeof(s) = 'string'
"""


@dataclass
class PurgeReport:
    """What a purge removed, or with `dry_run`, what it would remove."""

    dry_run: bool = False
    jobs: int = 0
    stages: int = 0
    events: int = 0
    metrics: int = 0
    results: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    uploads: int = 0
    upload_bytes: int = 0
    # Uploads no job or preset names, older than UNUSED_UPLOAD_AGE.
    unused_uploads: int = 0
    unused_upload_bytes: int = 0
    # Leftovers of interrupted writes, older than STALE_TMP_AGE.
    temporary_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.jobs} jobs, {self.stages} stages, {self.events} events, "
            f"{self.metrics} metrics, {self.results} results, "
            f"{self.artifact_files} artifact files ({self.artifact_bytes:,} bytes), "
            f"{self.uploads} uploads ({self.upload_bytes:,} bytes), "
            f"{self.unused_uploads} unused uploads over {format_age(UNUSED_UPLOAD_AGE)} old "
            f"({self.unused_upload_bytes:,} bytes), "
            f"{self.temporary_files} temporary files over {format_age(STALE_TMP_AGE)} old"
        )


def _due(policy: Policy) -> ColumnElement[bool]:
    """The jobs `policy` removes, judged by the database's clock."""
    ended = func.coalesce(jobs.c.finished_at, jobs.c.created_at)
    return and_(
        jobs.c.status.in_(policy.status_names),
        ended < db_later(-policy.older_than.total_seconds()),
    )


def purge(
    engine: Engine,
    artifacts: ArtifactStore | None,
    policy: Policy,
    *,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    pause: float = PAUSE_SECONDS,
    stop: threading.Event | None = None,
) -> PurgeReport:
    """Remove the jobs `policy` names, `batch_size` per transaction, and report what went.

    Then, whatever the policy, uploads that no job of any status and no preset names, once
    older than UNUSED_UPLOAD_AGE (1 day), and `.tmp` leftovers older than STALE_TMP_AGE
    (30 minutes). `artifacts` None leaves every file alone. `stop` ends the purge between two
    batches, before the sweep; what is left is removed by the next one.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if dry_run:
        return _survey(engine, artifacts, policy)
    report = PurgeReport()
    last_id = 0
    while stop is None or not stop.is_set():
        with reading(engine) as conn:
            batch = conn.execute(
                select(jobs.c.id, jobs.c.public_id, jobs.c.params)
                .where(_due(policy), jobs.c.id > last_id)
                .order_by(jobs.c.id)
                .limit(batch_size)
            ).all()
        if not batch:
            break
        last_id = batch[-1].id
        _purge_batch(engine, artifacts, _due(policy), batch, report)
        if len(batch) < batch_size:
            break
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
    if artifacts is not None and (stop is None or not stop.is_set()):
        _sweep(engine, artifacts, report)
    return report


def _unused(engine: Engine, artifacts: ArtifactStore) -> tuple[list[StoredFile], list[StoredFile]]:
    """The uploads no job or preset names that are older than UNUSED_UPLOAD_AGE, and the
    `.tmp` files older than STALE_TMP_AGE; a file of unknown date is never taken."""
    now = datetime.now(UTC)
    old: list[StoredFile] = []
    stale: list[StoredFile] = []
    for f in artifacts.stored_uploads():
        if f.modified is None:
            continue
        if SHA256.fullmatch(f.key) and f.modified < now - UNUSED_UPLOAD_AGE:
            old.append(f)
        elif TEMPORARY.fullmatch(f.key) and f.modified < now - STALE_TMP_AGE:
            stale.append(f)
    if not old:  # the usual case: no query over every job
        return [], stale
    with reading(engine) as conn:
        named = _named_uploads(conn)
    return [f for f in old if f.key not in named], stale


def _named_uploads(conn: Connection) -> set[str]:
    """Every upload SHA-256 that a job (of any status) or a preset names, at any depth.

    Read by the database, one statement per table, so only the distinct SHA-256 values come
    back, not a million jobs' parameters.
    """
    sql = _NAMED_POSTGRES if is_postgres(conn) else _NAMED_SQLITE
    named: set[str] = set()
    for table in (jobs.name, presets.name):
        named.update(conn.execute(text(sql.format(table=table))).scalars())
    return named


def _sweep(engine: Engine, artifacts: ArtifactStore, report: PurgeReport) -> None:
    """Remove unused old uploads and stale `.tmp` files, counting them in `report`."""
    try:
        unused, stale = _unused(engine, artifacts)
    except OSError:
        log.warning("could not list the uploads; none removed", exc_info=True)
        return
    for f in unused:
        try:
            artifacts.delete_upload(f.key)
        except OSError:
            log.warning("could not remove unused upload %s…; it stays", f.key[:12], exc_info=True)
            continue
        report.unused_uploads += 1
        report.unused_upload_bytes += f.size
    for f in stale:
        try:
            artifacts.delete_temporary(f.key)
        except OSError:
            log.warning("could not remove %s; it stays", f.key, exc_info=True)
            continue
        report.temporary_files += 1


def delete_jobs(
    engine: Engine,
    artifacts: ArtifactStore | None,
    public_ids: Sequence[str],
    *,
    actor: Actor = SYSTEM,
) -> tuple[PurgeReport, list[str]]:
    """Remove the named jobs that have finished and that `actor` may act on (their own, or
    any for an admin), as a purge would; also the ids it kept.

    A queued or running job is kept (cancel it first), as is another person's job and an id
    that is not in the store.
    """
    wanted = list(dict.fromkeys(public_ids))
    finished: ColumnElement[bool] = jobs.c.status.in_(PURGEABLE)
    if not actor.admin:
        finished = and_(finished, jobs.c.owner == actor.name)
    report = PurgeReport()
    for start in range(0, len(wanted), BATCH_SIZE):
        chunk = wanted[start : start + BATCH_SIZE]
        with reading(engine) as conn:
            batch = conn.execute(
                select(jobs.c.id, jobs.c.public_id, jobs.c.params)
                .where(jobs.c.public_id.in_(chunk), finished)
                .order_by(jobs.c.id)
            ).all()
        if batch:
            _purge_batch(engine, artifacts, finished, batch, report)
    with reading(engine) as conn:
        kept = set(
            conn.execute(select(jobs.c.public_id).where(jobs.c.public_id.in_(wanted))).scalars()
        )
    return report, [i for i in wanted if i in kept]


def _purge_batch(
    engine: Engine,
    artifacts: ArtifactStore | None,
    due: ColumnElement[bool],
    batch: Sequence[Row[int, str, Any]],  # id, public_id, params
    report: PurgeReport,
) -> None:
    """Remove `batch`, each row only if `due` still holds for it when the batch is locked."""
    ready: list[int] = []
    for row in batch:
        if artifacts is not None:
            try:
                files, size = artifacts.job_usage(row.public_id)
                artifacts.delete(row.public_id)
            except OSError:
                # Its rows stay too, so that the next purge tries again: never rows gone and
                # files left behind with no job to find them by.
                log.warning("could not remove the files of job %s; kept it", row.public_id)
                continue
            report.artifact_files += files
            report.artifact_bytes += size
        ready.append(row.id)
    if not ready:
        return
    with engine.begin() as conn:
        still = select(jobs.c.id).where(jobs.c.id.in_(ready), due)
        if is_postgres(conn):
            still = still.with_for_update()
        ids = list(conn.execute(still).scalars())
        if not ids:
            return
        of_sweeps = select(jobs.c.sweep_id).where(jobs.c.id.in_(ids), jobs.c.sweep_id.is_not(None))
        swept = list(conn.execute(of_sweeps.distinct()).scalars())
        for table, name in CHILDREN:
            gone = conn.execute(delete(table).where(table.c.job_id.in_(ids))).rowcount
            setattr(report, name, getattr(report, name) + gone)
        report.jobs += conn.execute(delete(jobs).where(jobs.c.id.in_(ids))).rowcount
        if swept:  # a sweep is its jobs: it goes with the last of them
            left = select(jobs.c.id).where(jobs.c.sweep_id == sweeps_t.c.id).exists()
            conn.execute(delete(sweeps_t).where(sweeps_t.c.id.in_(swept), ~left))
    if artifacts is None:
        return
    deleted = set(ids)
    shas = set(_uploads_in(row.params for row in batch if row.id in deleted))
    for sha in sorted(shas):
        with reading(engine) as conn:
            if _referenced(conn, sha):
                continue
        try:
            nbytes = artifacts.upload_size(sha)
            if nbytes is None:
                continue
            artifacts.delete_upload(sha)
        except OSError:
            log.warning("could not remove upload %s…; it stays", sha[:12], exc_info=True)
            continue
        report.uploads += 1
        report.upload_bytes += nbytes


def _uploads_in(params: Iterable[Any]) -> Iterator[str]:
    """The SHA-256 of every upload the given parameters refer to, at any depth."""
    stack = list(params)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            sha = value.get("sha256")
            if isinstance(sha, str) and SHA256.fullmatch(sha):
                yield sha
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _referenced(conn: Connection, sha: str, spare: ColumnElement[bool] | None = None) -> bool:
    """Whether a job (other than those `spare` matches) or a preset still names upload `sha`.

    A text search of the stored JSON: the same on both backends, and a false match only keeps
    a file.
    """
    pattern = f"%{sha}%"
    by_job = select(jobs.c.id).where(cast(jobs.c.params, Text).like(pattern))
    if spare is not None:
        by_job = by_job.where(not_(spare))
    if conn.execute(by_job.limit(1)).first() is not None:
        return True
    by_preset = select(presets.c.id).where(cast(presets.c.params, Text).like(pattern))
    return conn.execute(by_preset.limit(1)).first() is not None


def _survey(engine: Engine, artifacts: ArtifactStore | None, policy: Policy) -> PurgeReport:
    """What `purge` would remove now, read in one snapshot; nothing is written."""
    report = PurgeReport(dry_run=True)
    due = _due(policy)
    due_ids = select(jobs.c.id).where(due)
    with reading(engine) as conn:
        report.jobs = conn.execute(select(func.count()).select_from(jobs).where(due)).scalar_one()
        for table, name in CHILDREN:
            count = select(func.count()).select_from(table).where(table.c.job_id.in_(due_ids))
            setattr(report, name, conn.execute(count).scalar_one())
        if artifacts is None:
            return report
        public_ids: list[str] = []
        shas: set[str] = set()
        for row in conn.execute(select(jobs.c.public_id, jobs.c.params).where(due)):
            public_ids.append(row.public_id)
            shas.update(_uploads_in([row.params]))
        orphaned = [sha for sha in sorted(shas) if not _referenced(conn, sha, spare=due)]
    for public_id in public_ids:
        files, size = artifacts.job_usage(public_id)
        report.artifact_files += files
        report.artifact_bytes += size
    for sha in orphaned:
        nbytes = artifacts.upload_size(sha)
        if nbytes is not None:
            report.uploads += 1
            report.upload_bytes += nbytes
    unused, stale = _unused(engine, artifacts)
    report.unused_uploads = len(unused)
    report.unused_upload_bytes = sum(f.size for f in unused)
    report.temporary_files = len(stale)
    return report
