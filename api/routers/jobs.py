"""``/jobs``: submit a search job, follow it, download its result and groupings, cancel it.

The HTTP face only: submission is :func:`search.submit.prepare` / :func:`~search.submit.submit_job`, the queue
and cancelling are :class:`search.manager.JobManager`; every answer is a typed record of :mod:`search.records`
or :mod:`api.models`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.models import JobCreated, JobDetail, JobLinks, JobPage, JobSummary, TrainingList, TrainingView
from api.routers.common import (
    ManagerDep,
    SettingsDep,
    StoreDep,
    error_responses,
    not_found,
    require_token,
    unprocessable,
)
from api.routers.paths import confine_paths
from grouping.results import Grouping
from search.manager import JobFinishedError, JobManager
from search.plan import PlanSummary
from search.records import JobResult
from search.spec import JobSpec
from search.store import JobInfo, JobRecord, JobState, JobTrainingRecord, NotFoundError, Store, TrainingState
from search.submit import SpecError, Submission, prepare, submit_job

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_token)])
# Handlers are ``async`` and run their store calls in ONE worker thread each (``run_in_threadpool``): a sync
# handler costs FastAPI two thread hops (the call, then the response's serialisation).

BUDGET_TOLERANCE = 1e-9
"""Two budgets closer than this (in SNT) are the same budget (0.1 + 0.2 is 0.3)."""

MAX_PAGE = 500

SUMMARY_FIELDS = frozenset(
    {"id", "state", "created_at", "started_at", "finished_at", "progress", "cancel_requested", "error"}
)
"""What a listing shows of a stored job as it is (the rest comes from its spec)."""


def _links(request: Request, job_id: str) -> JobLinks:
    base = str(request.url_for("get_job", job_id=job_id))
    return JobLinks(
        self=base,
        trainings=f"{base}/trainings",
        result=f"{base}/result",
        grouping=f"{base}/grouping",
        dashboard=getattr(request.app.state, "dashboard_url", None),
    )


def load_job(store: Store, job_id: str) -> JobRecord:
    """The stored job, or a 404 that says how to find the jobs."""
    try:
        return store.get_job(job_id)
    except NotFoundError:
        raise not_found(f"job {job_id} not found; list the jobs with GET /jobs") from None
    except ValueError:  # an id the store cannot hold is an id it does not have
        raise not_found(f"job {job_id!r} not found; list the jobs with GET /jobs") from None


def _summary(request: Request, job: JobInfo) -> JobSummary:
    spec = job.spec
    return JobSummary(
        **job.model_dump(include=SUMMARY_FIELDS),
        name=spec.name,
        dataset=spec.dataset.name,
        tasks=list(spec.tasks),
        approximation=spec.approximation,
        links=_links(request, job.id),
    )


def _plan_summary(job: JobRecord) -> PlanSummary | None:
    if job.plan is not None:
        return job.plan.summary()
    return job.result.plan if job.result is not None else None


def _detail(request: Request, manager: JobManager, job: JobRecord) -> JobDetail:
    elapsed = None
    if job.started_at is not None:
        end = job.finished_at or datetime.now(UTC)
        elapsed = round((end - job.started_at).total_seconds(), 1)
    budgets = [g.budget for g in job.result.curve] if job.result is not None else job.spec.effective_budgets
    return JobDetail(
        **_summary(request, job).model_dump(),
        spec=job.spec,
        plan=_plan_summary(job),
        queue_position=manager.queue_position(job.id) if job.state is JobState.QUEUED else None,
        elapsed_seconds=elapsed,
        dashboard_url=getattr(request.app.state, "dashboard_url", None),
        dashboard_auth=getattr(request.app.state, "dashboard_auth", None),
        budgets=budgets,
    )


def submission(request: Request, data: dict[str, Any], settings: Any) -> Submission:
    """The body of ``POST /jobs`` validated completely (before a job exists); every problem is a 422 that
    names the field (even a validator's unexpected TypeError)."""
    try:
        spec = JobSpec.model_validate(data)
        spec = confine_paths(spec, settings.data_dir)
        capacity = getattr(request.app.state, "cluster_capacity", None)
        return prepare(spec, capacity() if capacity is not None else None)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    except SpecError as exc:
        loc = ("body", *exc.field.split("."))
        raise RequestValidationError([{"loc": loc, "msg": exc.problem, "type": "value_error"}]) from None
    except (TypeError, ValueError, ArithmeticError, OSError, LookupError) as exc:
        message = str(exc)
        raise unprocessable(
            message if message.startswith("budgets:") else f"invalid job spec: {message}"
        ) from None


@router.post(
    "/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=error_responses(400, 401, 413, 422),
    summary="Submit a search job",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
        }
    },
)
def create_job(
    body: Annotated[dict[str, Any], Body(description="a job spec (JobSpec)")],
    request: Request,
    response: Response,
    store: StoreDep,
    manager: ManagerDep,
    settings: SettingsDep,
) -> JobCreated:
    """Validate the spec completely (its fields, the dataset and its parameters, the tasks, the weighting
    method and its options, the model, the resources, the budgets), plan it, and queue it; it runs in the
    background on Ray. Any problem is a 422 naming the field, and no job is created.

    The body is the same job spec as ``taskgroup search --spec`` (schema ``JobSpec``). Dataset files
    (``tabular``'s ``path``) must lie in the service's data directory; a relative path is relative to it.
    """
    job = submit_job(store, submission(request, body, settings))
    manager.notify()
    links = _links(request, job.id)
    response.headers["Location"] = links.self
    planned = job.plan.network_trainings if job.plan is not None else None
    return JobCreated(
        id=job.id, state=job.state, created_at=job.created_at, trainings_planned=planned, links=links
    )


@router.get("/jobs", response_model=JobPage, responses=error_responses(401, 422), summary="List jobs")
async def list_jobs(
    request: Request,
    store: StoreDep,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9, description="jobs to skip (newest first)")] = 0,
) -> JobPage:
    """Jobs newest first, with their state and progress; ``next`` is the URL of the next page."""
    return await run_in_threadpool(_page, request, store, state, limit, offset)


def _page(request: Request, store: Store, state: JobState | None, limit: int, offset: int) -> JobPage:
    total = store.count_jobs(state)
    jobs = store.list_jobs(state=state, limit=limit, offset=offset)
    following = None
    if offset + len(jobs) < total:
        following = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    items = [_summary(request, job) for job in jobs]
    return JobPage(items=items, total=total, limit=limit, offset=offset, next=following)


@router.get(
    "/jobs/{job_id}", response_model=JobDetail, responses=error_responses(401, 404, 422), summary="One job"
)
async def get_job(
    job_id: str,
    request: Request,
    store: StoreDep,
    manager: ManagerDep,
) -> JobDetail:
    """State, progress (trainings done / running / failed / reused / total), timings, the estimate of the
    time left, the error if it failed, and the Ray dashboard URL."""
    return await run_in_threadpool(lambda: _detail(request, manager, load_job(store, job_id)))


def _training_view(record: JobTrainingRecord) -> TrainingView:
    training = record.training
    result = training.result
    return TrainingView(
        key=training.key,
        tasks=list(training.spec.tasks),
        capacity=training.spec.capacity,
        fidelity=training.spec.fidelity,
        seed=training.spec.seed,
        state=training.state,
        reused=record.reused,
        attempts=training.attempts,
        selection=None if result is None else result.selection,
        scoring=None if result is None else result.scoring,
        epochs_run=None if result is None else result.epochs_run,
        wall_seconds=training.wall_seconds,
        device=training.device,
        error=training.error,
        started_at=training.started_at,
        finished_at=training.finished_at,
    )


@router.get(
    "/jobs/{job_id}/trainings",
    response_model=TrainingList,
    responses=error_responses(401, 404, 422),
    summary="The trainings of a job",
)
async def list_trainings(
    job_id: str,
    store: StoreDep,
    state: Annotated[TrainingState | None, Query(description="only trainings in this state")] = None,
) -> TrainingList:
    """Every training of the job (once it started) with its state and, when done, its per-task losses."""
    return await run_in_threadpool(_trainings, store, job_id, state)


def _trainings(store: Store, job_id: str, state: TrainingState | None) -> TrainingList:
    job = load_job(store, job_id)
    records = store.job_trainings(job.id)
    counts = {s.value: 0 for s in TrainingState}
    for record in records:
        counts[record.training.state.value] += 1
    items = [_training_view(r) for r in records if state is None or r.training.state is state]
    return TrainingList(job_id=job.id, total=len(records), counts=counts, items=items)


def result_or_404(job: JobRecord) -> JobResult:
    """The job's result, or a 404 that says the job's state (and its progress or error)."""
    if job.state is JobState.SUCCEEDED and job.result is not None:
        return job.result
    message = f"job {job.id} has no result: it is {job.state.value}"
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        message += (
            f" ({job.progress.done}/{job.progress.total} trainings done); try again when it has succeeded"
        )
    elif job.state is JobState.FAILED:
        message += f": {job.error or 'no error recorded'}"
    raise not_found(message)


@router.get(
    "/jobs/{job_id}/result",
    response_model=JobResult,
    responses=error_responses(401, 404, 422),
    summary="The full result of a job",
)
async def get_result(job_id: str, store: StoreDep) -> JobResult:
    """The result: the budget curve (``tasks``, ``objective``, ``serve_by``, ``curve``) with ``job_id``,
    ``spec``, ``plan``, ``loss_table``, ``baselines``, ``missing`` and ``provenance``. 404 until the job
    succeeded."""
    return result_or_404(await run_in_threadpool(load_job, store, job_id))


@router.get(
    "/jobs/{job_id}/grouping",
    response_model=Grouping,
    responses={
        200: {"description": "one record of the budget curve, as a file"},
        **error_responses(401, 404, 422),
    },
    summary="Download the grouping for one budget",
)
async def get_grouping(
    job_id: str,
    budget: Annotated[float, Query(gt=0, allow_inf_nan=False, description="a budget of the job, in SNT")],
    store: StoreDep,
) -> JSONResponse:
    """The chosen networks for ``budget`` (one record of the budget curve) as a downloadable JSON file."""
    result = result_or_404(await run_in_threadpool(load_job, store, job_id))
    try:
        record = result.at(budget, tolerance=BUDGET_TOLERANCE)
    except KeyError:
        known = ", ".join(f"{g.budget:g}" for g in result.curve)
        raise unprocessable(
            f"budget {budget:g} is not a budget of job {job_id}; choose one of: {known}"
        ) from None
    filename = f"job-{job_id}-grouping-{budget:g}snt.json"
    return JSONResponse(
        record.model_dump(mode="json"), headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.delete(
    "/jobs/{job_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobDetail,
    responses=error_responses(401, 404, 409, 422),
    summary="Cancel a job",
)
async def cancel_job(
    job_id: str,
    request: Request,
    store: StoreDep,
    manager: ManagerDep,
) -> JobDetail:
    """Cancel a queued job at once, or ask a running job's driver to stop (it ends ``cancelled`` within
    seconds; trainings already finished stay stored and are reused by later jobs). 409 if already finished."""
    return await run_in_threadpool(_cancel, request, store, manager, job_id)


def _cancel(request: Request, store: Store, manager: JobManager, job_id: str) -> JobDetail:
    job = load_job(store, job_id)
    try:
        job = manager.cancel(job.id)
    except JobFinishedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _detail(request, manager, job)
