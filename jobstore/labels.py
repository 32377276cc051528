"""Tags added to or taken from finished or running jobs, many at a time, from the history.

Tags are labels, not state: changing them is no transition, and any job may be tagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, bindparam, select, update

from jobstore.enqueue import MAX_TAG_LENGTH, MAX_TAGS
from jobstore.models import Job, table_of
from runlab.errors import InvalidParams
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


def add_tag(engine: Engine, public_ids: Sequence[str], tag: str) -> int:
    """Tag the jobs; the number that gained the tag. A job already at the tag limit is refused
    as a whole, before anything changes."""
    tag = clean_tag(tag)
    return _retag(engine, public_ids, lambda tags: tags if tag in tags else [*tags, tag])


def remove_tag(engine: Engine, public_ids: Sequence[str], tag: str) -> int:
    tag = clean_tag(tag)
    return _retag(engine, public_ids, lambda tags: [t for t in tags if t != tag])


def _retag(
    engine: Engine, public_ids: Sequence[str], change: Callable[[list[str]], list[str]]
) -> int:
    with engine.begin() as conn:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.public_id, jobs.c.tags).where(
                jobs.c.public_id.in_(list(public_ids))
            )
        ).all()
        updates = []
        for row in rows:
            old = list(row.tags or [])
            new = change(old)
            if len(new) > MAX_TAGS:
                raise InvalidParams({"tag": f"job {row.public_id} already has {MAX_TAGS} tags"})
            if new != old:
                updates.append({"row_id": row.id, "new_tags": new})
        if updates:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == bindparam("row_id"))
                .values(tags=bindparam("new_tags")),
                updates,
            )
    return len(updates)
