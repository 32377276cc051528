"""A small OpenID Connect provider for the sign-in tests, on 127.0.0.1: discovery, an authorize
page where a person types their email, a token endpoint that answers with an RS256-signed
id_token, its JWKS, and an end-session endpoint.

Only what Streamlit's `st.login` (Authlib's code flow) uses, checked as a provider would: the
client's id and secret, its redirect URI, one use per code, the nonce carried into the token.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class _Grant:
    email: str
    nonce: str | None
    redirect_uri: str
    client_id: str


@dataclass
class Provider:
    client_id: str = "runlab-web"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # How long an id_token holds: a session of the app ends with it.
    token_seconds: float = 3600.0
    groups: dict[str, list[str]] = field(default_factory=dict)  # email: its groups claim
    port: int = 0
    _key: Any = None
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    signed_in: list[str] = field(default_factory=list)  # emails, as each id_token was issued

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-" + grant.email.split("@")[0],
            "aud": grant.client_id,
            "iat": now,
            "exp": now + int(self.token_seconds),
            "email": grant.email,
            "email_verified": True,
            "name": grant.email.split("@")[0].title(),
            "groups": self.groups.get(grant.email, []),
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self._key)

    def secrets_toml(self, app_url: str, cookie_secret: str) -> str:
        """The `[auth]` section of `.streamlit/secrets.toml` that points an app here."""
        return (
            "[auth]\n"
            f'redirect_uri = "{app_url}/oauth2callback"\n'
            f'cookie_secret = "{cookie_secret}"\n'
            f'client_id = "{self.client_id}"\n'
            f'client_secret = "{self.client_secret}"\n'
            f'server_metadata_url = "{self.metadata_url}"\n'
        )

    # --- the server -----------------------------------------------------------------------------

    def start(self) -> None:
        self._key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(provider.metadata())
                elif url.path == "/jwks":
                    public = provider._key.as_dict(private=False)
                    self._json({"keys": [{**public, "kid": "test-key", "use": "sig"}]})
                elif url.path == "/authorize":
                    self._authorize_page(query)
                elif url.path == "/logout":
                    back = query.get("post_logout_redirect_uri")
                    if back:
                        self._redirect(back)
                    else:
                        self._page("<p>Signed out.</p>")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                path = urlsplit(self.path).path
                if path == "/authorize":
                    self._approve(form)
                elif path == "/token":
                    self._token(form)
                else:
                    self.send_error(404)

            def _authorize_page(self, query: dict[str, str]) -> None:
                if query.get("client_id") != provider.client_id or not query.get("redirect_uri"):
                    self.send_error(400, "unknown client or no redirect_uri")
                    return
                hidden = "".join(
                    f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                    for k, v in query.items()
                    if k in ("state", "nonce", "redirect_uri", "client_id")
                )
                self._page(
                    '<form method="post" action="/authorize">'
                    f'{hidden}<label>Email <input name="email" id="email"></label>'
                    '<button type="submit" id="approve">Continue</button></form>'
                )

            def _approve(self, form: dict[str, str]) -> None:
                code = secrets.token_urlsafe(16)
                provider._grants[code] = _Grant(
                    form["email"], form.get("nonce"), form["redirect_uri"], form["client_id"]
                )
                back = {"code": code, **({"state": form["state"]} if "state" in form else {})}
                self._redirect(f"{form['redirect_uri']}?{urlencode(back)}")

            def _token(self, form: dict[str, str]) -> None:
                client_id, secret = form.get("client_id"), form.get("client_secret")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                if client_id != provider.client_id or secret != provider.client_secret:
                    self._json({"error": "invalid_client"}, status=401)
                    return
                grant = provider._grants.pop(form.get("code", ""), None)
                if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                    self._json({"error": "invalid_grant"}, status=400)
                    return
                provider.signed_in.append(grant.email)
                self._json(
                    {
                        "access_token": secrets.token_urlsafe(16),
                        "token_type": "Bearer",
                        "expires_in": int(provider.token_seconds),
                        "id_token": provider.id_token(grant),
                    }
                )

            def _json(self, body: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _page(self, body: str) -> None:
                data = f"<!doctype html><html><body>{body}</body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """The provider goes down: its port no longer answers."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextmanager
def provider(**options: Any) -> Iterator[Provider]:
    p = Provider(**options)
    p.start()
    try:
        yield p
    finally:
        p.stop()
