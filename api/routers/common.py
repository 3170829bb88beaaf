"""What the routers share: dependencies (settings, store, job queue, auth) and error answers.

Imports neither torch nor ray (``POST /solve`` depends on it): the dataset path guard, which needs the dataset
registry, is :mod:`api.routers.paths`."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.models import ErrorResponse
from api.settings import Settings
from search.manager import JobManager
from search.store import Store

bearer = HTTPBearer(auto_error=False, description="the service's TASKGROUP_API_TOKEN (when one is set)")

# The dependencies are ``async``: they only read app state, and a sync dependency costs a thread hop each.


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_manager(request: Request) -> JobManager:
    return request.app.state.manager


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ManagerDep = Annotated[JobManager, Depends(get_manager)]


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the request has ``Authorization: Bearer <TASKGROUP_API_TOKEN>`` (when a token is set)."""
    expected = settings.token
    if expected is None:
        return
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this service needs a bearer token: send the header 'Authorization: Bearer <token>' "
            "(the value of TASKGROUP_API_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the bearer token is wrong: send the value of the service's TASKGROUP_API_TOKEN",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error answers (all have the :class:`ErrorResponse` body)."""
    descriptions = {
        400: "malformed request (e.g. invalid JSON)",
        401: "missing or wrong bearer token",
        404: "no such job, or its result is not ready (the message says its state)",
        409: "the job is already finished",
        413: "request body larger than TASKGROUP_MAX_UPLOAD_BYTES",
        415: "unsupported content type",
        422: "invalid input; the message says which field and how to fix it",
        503: "the results store or Ray does not answer",
    }
    return {code: {"model": ErrorResponse, "description": descriptions.get(code, "error")} for code in codes}


def not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def _query_names(dependant: Any) -> set[str]:
    """Every query parameter an endpoint takes, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not take (a typo such as ``?stat=running`` would
    otherwise be ignored silently), naming the ones it takes: the query-string twin of the bodies'
    ``extra="forbid"``."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        raise unprocessable(
            f"unknown query parameter(s) {', '.join(map(repr, unknown))}; this endpoint takes {takes}"
        )


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


__all__ = [
    "ManagerDep",
    "SettingsDep",
    "StoreDep",
    "bearer",
    "error_responses",
    "get_manager",
    "get_settings",
    "get_store",
    "not_found",
    "require_token",
    "unprocessable",
]
