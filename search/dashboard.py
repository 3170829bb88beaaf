"""How to open the Ray dashboard: the hint printed and served next to its URL, never the token itself.

Ray (2.52 and later) guards its dashboard with token authentication, on by default for a local
``ray.init()``: the page opens on "Authentication Token Required". Ray looks for the token in
``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH`` names, else ``~/.ray/auth_token`` (where a local Ray
writes the one it generates), and ``ray get-auth-token`` prints the one it finds. The hint says where to
look, for a local cluster and for a cluster joined by address; it names settings and files, never a token's
value, so it is safe in logs, API answers and terminals. ``RAY_AUTH_MODE=disabled`` turns the
authentication off (the tests do).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

AUTH_MODE_VAR = "RAY_AUTH_MODE"
TOKEN_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = "~/.ray/auth_token"


def _where(env: Mapping[str, str]) -> str:
    """Where this process's Ray finds its token (a setting or a file, never the value)."""
    if env.get(TOKEN_VAR, "").strip():
        return f"the {TOKEN_VAR} environment variable this service was started with"
    if env.get(TOKEN_PATH_VAR, "").strip():
        return f"the file {TOKEN_PATH_VAR} names ({env[TOKEN_PATH_VAR].strip()})"
    return DEFAULT_TOKEN_FILE


def dashboard_auth_hint(*, cluster: bool, environ: Mapping[str, str] | None = None) -> str:
    """How a user authenticates to the Ray dashboard. ``cluster``: Ray was joined by address (``RAY_ADDRESS``,
    ``--address``) rather than started here. Reads the ``RAY_AUTH_*`` settings of ``environ`` (default: this
    process's environment) to say where the token is; never returns a token."""
    env = os.environ if environ is None else environ
    if env.get(AUTH_MODE_VAR, "").strip().lower() == "disabled":
        return f"Ray's token authentication is off ({AUTH_MODE_VAR}=disabled): no token needed"
    if cluster:
        return (
            "the dashboard asks for the cluster's Ray auth token: the value of RAY_AUTH_TOKEN its nodes were "
            f"started with (or the file {TOKEN_PATH_VAR} names there, else {DEFAULT_TOKEN_FILE} on the head "
            "node); `ray get-auth-token` prints it on a machine that has it"
        )
    return (
        "the dashboard asks for Ray's auth token: run `ray get-auth-token` on this machine (it prints the "
        f"token from {_where(env)}) and paste it into the page"
    )


__all__ = ["DEFAULT_TOKEN_FILE", "TOKEN_PATH_VAR", "TOKEN_VAR", "dashboard_auth_hint"]
