"""Who is asking: the person behind a page or a command, and whether they are an admin.

Identity is data and permission is one rule, `Actor.may_act_on`: the owner of a job, or an
admin, may cancel, stop, delete or tag it; anyone may view it, and a re-run or a clone is a new
job of whoever asks. The store's verbs take an `Actor` and check it where they write; a page
only hides what the store would refuse anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """A person as the store's verbs see them: the name recorded as a job's owner and in its
    events, and whether they may act on every job."""

    name: str
    admin: bool = False

    def may_act_on(self, owner: str) -> bool:
        return self.admin or owner == self.name


# The store's own work and the tests' seeding: every right, no name in the events.
SYSTEM = Actor("", admin=True)


def operator(name: str) -> Actor:
    """The CLI's actor: it talks to the store directly, so it may act on any job; its events
    name the operating-system user, or the name given with `--as`."""
    return Actor(name, admin=True)


def signed_in(
    claims: Mapping[str, Any],
    *,
    admins: Iterable[str] = (),
    admin_groups: Iterable[str] = (),
    groups_claim: str = "groups",
) -> Actor:
    """The actor of an OIDC identity: its email, or its `sub` where it has none. An admin is
    named in `admins` by email, or belongs to one of `admin_groups` by the `groups_claim`."""
    email = str(claims.get("email") or "").strip()
    name = email or str(claims.get("sub") or "").strip()
    named = {a.strip().lower() for a in admins if a.strip()}
    groups = claims.get(groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    wanted = {g.strip() for g in admin_groups if g.strip()}
    admin = (email.lower() in named if email else False) or bool(wanted & {str(g) for g in groups})
    return Actor(name, admin=admin)
