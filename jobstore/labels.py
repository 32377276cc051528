"""Tags added to or taken from finished or running jobs, many at a time, from the history.

Tags are labels, not state: changing them is no transition, and a job in any status may be
tagged, by its owner or an admin; each change is an event naming who made it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from jobstore.enqueue import MAX_TAG_LENGTH, MAX_TAGS
from jobstore.ledger import event_row, insert_events
from jobstore.models import Job, table_of
from runlab.errors import InvalidParams
from runlab.identity import SYSTEM, Actor
from runlab.text import clean_label

jobs = table_of(Job)


def clean_tag(tag: str) -> str:
    """The tag as stored, or InvalidParams for the `tag` field."""
    return clean_label(
        tag.strip(),
        "tag",
        max_length=MAX_TAG_LENGTH,
        empty="type a tag",
        too_long=f"at most {MAX_TAG_LENGTH} characters",
    )


def add_tag(engine: Engine, public_ids: Sequence[str], tag: str, *, actor: Actor = SYSTEM) -> int:
    """Tag the jobs that `actor` may act on (their own, or any for an admin); the number that
    gained the tag. A job already at the tag limit is refused as a whole, before anything
    changes."""
    tag = clean_tag(tag)
    return _retag(
        engine,
        public_ids,
        lambda tags: tags if tag in tags else [*tags, tag],
        actor,
        f"tagged {tag}",
    )


def remove_tag(
    engine: Engine, public_ids: Sequence[str], tag: str, *, actor: Actor = SYSTEM
) -> int:
    tag = clean_tag(tag)
    return _retag(
        engine, public_ids, lambda tags: [t for t in tags if t != tag], actor, f"untagged {tag}"
    )


def _retag(
    engine: Engine,
    public_ids: Sequence[str],
    change: Callable[[list[str]], list[str]],
    actor: Actor,
    what: str,
) -> int:
    mine = [] if actor.admin else [jobs.c.owner == actor.name]
    with engine.begin() as conn:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.public_id, jobs.c.tags, jobs.c.attempt).where(
                jobs.c.public_id.in_(list(public_ids)), *mine
            )
        ).all()
        updates = []
        events: list[dict[str, Any]] = []
        for row in rows:
            old = list(row.tags or [])
            new = change(old)
            if len(new) > MAX_TAGS:
                raise InvalidParams({"tag": f"job {row.public_id} already has {MAX_TAGS} tags"})
            if new != old:
                updates.append({"row_id": row.id, "new_tags": new})
                events.append(
                    event_row(row.id, row.attempt, what, kind="request", actor=actor.name)
                )
        if updates:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == bindparam("row_id"), *mine)
                .values(tags=bindparam("new_tags")),
                updates,
            )
            insert_events(conn, events)
    return len(updates)
