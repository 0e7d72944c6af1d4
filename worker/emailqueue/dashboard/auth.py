"""Who may look and who may act, and why a forged request cannot act.

Credentials: a token (``EMAILQUEUE_DASHBOARD_TOKEN``) or a user and password
(``EMAILQUEUE_DASHBOARD_USER`` / ``_PASSWORD``). When either is set, every page and API
call needs them; when neither is, the dashboard is view-only for anyone who reaches it.

Two ways in:

- **Browser**: ``POST /api/login`` with the credentials returns a session cookie
  (``HttpOnly; SameSite=Strict; Path=/``, ``Secure`` over HTTPS), signed with HMAC-SHA256
  under a key made at process start. A state-changing request on a session must carry the
  session's CSRF token in the ``X-CSRF-Token`` header; the token is HMAC(key, session id),
  handed out by ``GET /api/session``, which another origin cannot read.
- **Scripts**: ``Authorization: Bearer <token>`` or ``Authorization: Basic ...`` on each
  request. Browsers never add such a header on their own to another site's request (the
  dashboard never sends a ``WWW-Authenticate`` challenge, so no browser caches Basic
  credentials for it), so these requests need no CSRF token.

Every POST must also be JSON (``Content-Type: application/json``: a cross-site form cannot
send that without a CORS preflight, which is never granted) and, when the browser says
where it comes from (``Origin``, ``Sec-Fetch-Site``), come from the dashboard's own origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from .config import DashboardConfig

COOKIE = "eq_dashboard"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``session`` is set when the cookie authenticated it."""

    name: str
    session: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Auth:
    def __init__(self, cfg: DashboardConfig, key: bytes | None = None) -> None:
        self.cfg = cfg
        self._key = key or secrets.token_bytes(32)

    @property
    def required(self) -> bool:
        return self.cfg.auth_configured

    # ---- credentials ---------------------------------------------------------------------

    def check_token(self, token: str) -> bool:
        return self.cfg.token is not None and _same(token, self.cfg.token.get_secret_value())

    def check_password(self, user: str, password: str) -> bool:
        if self.cfg.user is None or self.cfg.password is None:
            return False
        ok_user = _same(user, self.cfg.user)
        ok_password = _same(password, self.cfg.password.get_secret_value())
        return ok_user and ok_password

    def login(self, token: str | None, user: str | None, password: str | None) -> Principal | None:
        if token and self.check_token(token):
            return Principal("token")
        if user and password is not None and self.check_password(user, password):
            return Principal(user)
        return None

    def from_header(self, request: Request) -> Principal | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Principal("token") if self.check_token(value) else None
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return Principal(user) if self.check_password(user, password) else None
        return None

    # ---- sessions ------------------------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def new_session(self, principal: Principal) -> str:
        """The cookie value: ``<session id>.<expiry>.<name>.<signature>`` (no secret inside)."""
        sid = secrets.token_urlsafe(18)
        expiry = int(time.time()) + self.cfg.session_ttl_s
        payload = f"{sid}.{expiry}.{_b64(principal.name.encode())}"
        return f"{payload}.{self._sign(payload)}"

    def from_cookie(self, request: Request) -> Principal | None:
        value = request.cookies.get(COOKIE, "")
        payload, _, signature = value.rpartition(".")
        if not payload or not _same(signature, self._sign(payload)):
            return None
        sid, expiry, name = [*payload.split("."), "", "", ""][:3]
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        try:
            return Principal(_unb64(name).decode(), session=sid)
        except (binascii.Error, UnicodeDecodeError):
            return None

    def csrf_token(self, principal: Principal) -> str | None:
        return None if principal.session is None else self._sign(f"csrf:{principal.session}")

    # ---- requests ------------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        """Who is calling: the Authorization header first, then the session cookie."""
        return self.from_header(request) or self.from_cookie(request)

    def csrf_problem(self, request: Request, principal: Principal | None) -> str | None:
        """Why a state-changing request must be refused as possibly forged; None if it is fine."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return "a change must be sent as application/json"
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site})"
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            return "cross-origin request refused (Origin is not this dashboard)"
        if principal is not None and principal.session is not None:
            expected = self.csrf_token(principal) or ""
            if not _same(request.headers.get(CSRF_HEADER, ""), expected):
                return "missing or wrong X-CSRF-Token header"
        return None
