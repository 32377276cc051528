"""Named sets of form values, per kind, that an analyst saves once and loads back.

Anyone may load any preset; only the person who saved it, or an admin, may replace or remove
it. A preset saved before presets had owners (migration 0011) has none, and is anyone's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from jobstore.engine import db_now, reading
from jobstore.models import Preset, table_of
from jobstore.views import as_utc
from runlab.errors import InvalidParams
from runlab.identity import SYSTEM, Actor
from runlab.text import bad_in_json, clean_label

NAME_MAX = 200
presets = table_of(Preset)


@dataclass(frozen=True)
class PresetView:
    name: str
    params: dict[str, Any]
    created_at: datetime | None
    owner: str | None = None


def _name(name: str) -> str:
    return clean_label(
        " ".join(name.split()),
        "preset",
        max_length=NAME_MAX,
        empty="give the preset a name",
        too_long=f"must be at most {NAME_MAX} characters",
    )


def _theirs(actor: Actor) -> Any:
    """The presets `actor` may replace or remove."""
    if actor.admin:
        return true()
    return or_(presets.c.owner.is_(None), presets.c.owner == "", presets.c.owner == actor.name)


def save(
    engine: Engine, kind: str, name: str, params: Mapping[str, Any], *, actor: Actor = SYSTEM
) -> str:
    """Keep `params` under `name` for `kind`, replacing a preset of that name that `actor` may
    change; return the name. Another person's preset of that name is refused, by field.

    The values are kept as entered (an empty seed stays empty), so loading a preset gives the
    form back, not one job's drawn seed.
    """
    clean = _name(name)
    values = {k: v for k, v in params.items() if v is not None}
    errors = {key: why for key, value in values.items() if (why := bad_in_json(value))}
    if errors:
        raise InvalidParams(errors)
    for _ in range(3):  # two saves of a new name may race: the loser updates instead
        with engine.begin() as conn:
            hit = conn.execute(
                update(presets)
                .where(presets.c.kind == kind, presets.c.name == clean, _theirs(actor))
                .values(params=values, created_at=db_now())
                .returning(presets.c.id)
            ).first()
            if hit is not None:
                return clean
            owner = conn.execute(
                select(presets.c.owner).where(presets.c.kind == kind, presets.c.name == clean)
            ).first()
            if owner is not None:
                raise InvalidParams(
                    {"preset": f"{clean!r} is {owner[0]}'s preset; save yours under another name"}
                )
            try:
                conn.execute(
                    presets.insert().values(
                        kind=kind,
                        name=clean,
                        params=values,
                        created_at=db_now(),
                        owner=actor.name or None,
                    )
                )
            except IntegrityError:
                continue
            return clean
    raise RuntimeError(f"preset {clean!r} kept changing while being saved")


def list_presets(engine: Engine, kind: str) -> list[PresetView]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(presets.c.name, presets.c.params, presets.c.created_at, presets.c.owner)
            .where(presets.c.kind == kind)
            .order_by(presets.c.name)
        ).all()
    return [PresetView(r.name, dict(r.params or {}), as_utc(r.created_at), r.owner) for r in rows]


def load(engine: Engine, kind: str, name: str) -> dict[str, Any]:
    with reading(engine) as conn:
        params = conn.execute(
            select(presets.c.params).where(presets.c.kind == kind, presets.c.name == name)
        ).scalar()
    if params is None:
        raise InvalidParams({"preset": f"no preset {name!r} for {kind}"})
    return dict(params)


def remove(engine: Engine, kind: str, name: str, *, actor: Actor = SYSTEM) -> bool:
    """Remove a preset `actor` may change; False if there is none such."""
    with engine.begin() as conn:
        gone = conn.execute(
            delete(presets).where(presets.c.kind == kind, presets.c.name == name, _theirs(actor))
        ).rowcount
    return bool(gone)
