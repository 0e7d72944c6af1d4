"""The Secret holding a queue's Redis credentials.

Managed Redis: a password generated once (see ``generate_password``) and never rotated by
a re-render: the operator only creates this Secret and never patches it.
External Redis: the user name and password taken from the URL Secret, so that KEDA's
TriggerAuthentication can read them (it cannot parse a URL).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from emailqueue_operator.spec import EmailQueue

from .common import PASSWORD_KEY, REDIS, USERNAME_KEY, metadata, redis_secret_name


def generate_password() -> str:
    """256 bits, URL-safe (no quoting needed in a redis:// URL or a config file)."""
    return secrets.token_urlsafe(32)


def redis_secret(eq: EmailQueue, password: str, username: str | None = None) -> dict[str, Any]:
    data = {PASSWORD_KEY: password}
    if username:
        data[USERNAME_KEY] = username
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(eq, redis_secret_name(eq), REDIS),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
