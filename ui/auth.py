"""Sign-in: who is using the page, through Streamlit's own OIDC (`st.login`, with Authlib).

Two modes. With an `[auth]` section in `.streamlit/secrets.toml`, every page asks for sign-in
first, and the person's actor is their identity (its email, or `sub`), an admin if the
settings name them. Without one, as `make run` starts it, there is one user and no sign-in:
the owner is `RUNLAB_USER` or the operating-system user, who may act on every job.

A shared link opened before sign-in leads back to itself after it: the provider's callback
always lands on the home page, so the link is kept for the browser (by its XSRF token, which
outlives the round trip) and the home page goes on to it.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from runlab.identity import Actor, signed_in
from runlab.settings import Settings
from ui.text import md_escape

log = logging.getLogger(__name__)

PROVIDER_TIMEOUT = 3.0  # seconds the sign-in page waits for the provider's discovery document
RETURN_SECONDS = 600.0  # how long a link opened before sign-in is kept for its browser
HOME = "app.py"


@dataclass(frozen=True)
class Provider:
    name: str  # "default", or the name of its table in [auth]
    label: str
    metadata_url: str


def _auth_section() -> dict[str, Any] | None:
    """The `[auth]` table of Streamlit's secrets, or None where there is none."""
    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets file at all
        return None
    if section is None or not hasattr(section, "to_dict"):
        return None
    return dict(section.to_dict())


def configured() -> bool:
    return _auth_section() is not None


def providers() -> list[Provider]:
    section = _auth_section() or {}
    if section.get("server_metadata_url"):
        return [Provider("default", "Sign in", str(section["server_metadata_url"]))]
    return [
        Provider(name, f"Sign in with {name}", str(value["server_metadata_url"]))
        for name, value in section.items()
        if isinstance(value, dict) and value.get("server_metadata_url")
    ]


def actor(settings: Settings) -> Actor:
    """Who is using this page. With sign-in configured, a page that reaches here has a person
    signed in (`gate` stopped every other run)."""
    if not configured():
        return Actor(settings.owner, admin=True)
    return signed_in(
        st.user.to_dict(),
        admins=settings.admin_emails,
        admin_groups=settings.admin_group_names,
        groups_claim=settings.groups_claim,
    )


def gate(script: str) -> None:
    """With sign-in configured, stop the page here unless a person is signed in and their
    session is current; `script` is the page being opened, to come back to after sign-in."""
    if not configured():
        return
    if not st.user.is_logged_in:
        _remember(script)
        _sign_in_page(expired=False)
        st.stop()
    expires = st.user.get("exp")
    if isinstance(expires, (int, float)) and expires < time.time():
        _remember(script)
        _sign_in_page(expired=True)
        st.stop()
    if script == HOME:
        _go_back()


def sidebar(settings: Settings) -> None:
    """Who is signed in, and the way out; nothing without sign-in."""
    if not configured() or not st.user.is_logged_in:
        return
    who = actor(settings)
    role = " · admin" if who.admin else ""
    st.text(f"Signed in as {who.name}{role}")  # text: Markdown would make the email a link
    if st.button("Sign out", icon=":material/logout:", key="sign_out"):
        st.logout()


# --- the sign-in page --------------------------------------------------------------------------


def _sign_in_page(*, expired: bool) -> None:
    st.title("Sign in to Runlab")
    if expired:
        st.info("Your session has ended. Sign in again to go on.", icon=":material/schedule:")
    else:
        st.caption(
            "This Runlab is shared by a team: sign in to see, run and share jobs. "
            "A link you opened brings you back to it once you are signed in."
        )
    found = providers()
    if not found:
        st.error(
            "Sign-in is switched on (an `[auth]` section in `.streamlit/secrets.toml`) but names "
            "no provider: give it `server_metadata_url`, `client_id` and `client_secret`.",
            icon=":material/error:",
        )
        return
    for provider in found:
        down = _unreachable(provider.metadata_url)
        if down is not None:
            host = urlsplit(provider.metadata_url).netloc or provider.metadata_url
            st.error(
                f"The sign-in service at {md_escape(host)} does not answer ({md_escape(down)}). "
                "Nobody can sign in until it does; try again in a minute.",
                icon=":material/cloud_off:",
            )
            st.button("Try again", key=f"retry-{provider.name}", icon=":material/refresh:")
            continue
        if st.button(
            provider.label, key=f"login-{provider.name}", type="primary", icon=":material/login:"
        ):
            st.login(None if provider.name == "default" else provider.name)


def _unreachable(url: str) -> str | None:
    """Why the provider's discovery document cannot be read, or None when it can."""
    try:
        with urllib.request.urlopen(url, timeout=PROVIDER_TIMEOUT) as answer:
            if answer.status != 200:
                return f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason) or type(exc).__name__
    return None


# --- back to the link after sign-in ------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _returns() -> dict[bytes, tuple[str, dict[str, str], float]]:
    """Per browser, the page and query it opened before signing in; one map per server."""
    return {}


def _browser() -> bytes | None:
    """What tells this browser apart across the sign-in round trip: its XSRF token, which the
    server keeps in a cookie and hands back unchanged in substance."""
    raw = st.context.cookies.get("_streamlit_xsrf")
    if not raw:
        return None
    try:
        from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string
    except ImportError:
        return None
    token, _stamp = decode_xsrf_token_string(raw)
    return token


def _remember(script: str) -> None:
    browser = _browser()
    if browser is None or script == HOME:
        return
    returns = _returns()
    now = time.monotonic()
    for key in [k for k, (_, _, at) in returns.items() if now - at > RETURN_SECONDS]:
        returns.pop(key, None)
    returns[browser] = (script, dict(st.query_params.to_dict()), now)


def _go_back() -> None:
    browser = _browser()
    if browser is None:
        return
    found = _returns().pop(browser, None)
    if found is None:
        return
    script, query, at = found
    if time.monotonic() - at <= RETURN_SECONDS:
        st.switch_page(script, query_params=query)
