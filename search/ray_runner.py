"""Run a batch of trainings as Ray Tune trials, writing each finished training to the store at once.

One ``Tuner.fit()`` per batch: a grid over the trainings, per-trial resources, ``FailureConfig`` retries,
``reuse_actors`` (a new trial process costs seconds of imports). A :class:`StoreCallback` writes every
finished or failed training to the results store from the driver, and a :class:`CancelStopper` stops all
trials when the job's :class:`~search.control.JobControl` says so. No home-made pool or scheduler: Ray places
the trials.

Ray facts this relies on (../shared/STACK.md): one ``fit()`` at a time per driver process (a
:class:`TuneRunner` holds the lock; a process makes one runner), callbacks and stoppers are pickled into
``tuner.pkl`` (they keep no locks, stores or events in their pickled state), and trial output stays out of
the driver's log (``log_to_driver=False``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from search.control import JobControl
from search.settings import training_nice
from search.spec import Resources
from search.store import Store, TrainingState, open_store
from search.submit import ClusterCapacity
from search.trainable import NICE_FIELD, RESULT_FIELD, WEIGHTS_BYTES, WEIGHTS_SHA256, train_trial
from search.trial_names import named_trainable, trial_dirname, trial_name
from search.weights import checkpoint_uri, delete_weights
from workers.spec import TrainingResult, TrainingSpec

log = logging.getLogger(__name__)

PROBE_SECONDS = 3.0
"""How long to wait for a Ray address to accept a connection before saying it cannot be reached."""


@dataclass
class RayInfo:
    """Where the driver is connected."""

    address: str
    dashboard_url: str | None
    resources: dict[str, float]


def probe_address(address: str, timeout: float = PROBE_SECONDS) -> None:
    """ValueError naming ``address`` unless something accepts a TCP connection there within ``timeout``.

    ``ray.init`` on an address where nothing listens retries for minutes; this answers in seconds. Only
    ``host:port`` addresses are probed (``auto`` and ``ray://`` are left to Ray)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"cannot reach the Ray cluster at {address} (RAY_ADDRESS or --address): {reason}; start it "
            "with `ray start --head`, fix the address, or unset RAY_ADDRESS to use a local Ray"
        ) from None


def ensure_ray(
    *, address: str | None = None, dashboard: bool = False, num_cpus: int | None = None
) -> RayInfo:
    """Connect to Ray once: an existing cluster at ``address`` / ``RAY_ADDRESS`` (probed first), else a local
    one. The dashboard URL is known to the call that connects (``ray.init``'s answer); an already connected
    process gets None."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no console tables from Tune: we draw our own progress
    url = None
    if not ray.is_initialized():  # never ray.init() again: it would put back Ray's own SIGTERM handler
        address = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs["include_dashboard"] = dashboard
            if num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
        else:
            probe_address(address)
        url = ray.init(address=address, **kwargs).dashboard_url
        log.info("connected to Ray at %s", ray.get_runtime_context().gcs_address)
    return RayInfo(
        address=ray.get_runtime_context().gcs_address,
        dashboard_url=f"http://{url}" if url and "://" not in url else (url or None),
        resources={k: float(v) for k, v in ray.cluster_resources().items()},
    )


def cluster_capacity() -> ClusterCapacity:
    """What the largest live node of the connected cluster offers one training."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if not nodes:
        return ClusterCapacity(cpus=0, gpus=0, where="the Ray cluster (no live node)")
    return ClusterCapacity(
        cpus=max(float(n["Resources"].get("CPU", 0)) for n in nodes),
        gpus=max(float(n["Resources"].get("GPU", 0)) for n in nodes),
        where="the largest Ray node",
    )


@dataclass
class TrainingEvent:
    """What the callback tells the job runner (for progress bars and the job's progress record)."""

    key: str
    kind: str  # "started" | "epoch" | "succeeded" | "weights" (kept, recorded) | "retrying" | "failed"
    detail: dict[str, Any] = field(default_factory=dict)


ProgressHook = Callable[[TrainingEvent], None]


def _trial_key(trial: Any) -> str:
    return str(trial.config["training"]["key"])


def _trial_error(trial: Any) -> str:
    """The last line of the trial's error (its traceback stays in Tune's error file)."""
    try:
        error = trial.get_error()
        text = str(error) if error is not None else ""
    except Exception:
        text = ""
    if not text and trial.error_file and Path(trial.error_file).exists():
        text = Path(trial.error_file).read_text(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:2000] if lines else "training failed (no error message)"


class _StoreHolder:
    """Keeps a store by URL: the live store (and any hook or control) is dropped from the pickled state that
    Tune writes to tuner.pkl, and the store reopened on first use after unpickling."""

    _transient: tuple[str, ...] = ("_store",)

    def __init__(self, store: Store) -> None:
        self.store_url = store.url
        self._store: Store | None = store

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.store_url)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        return {k: (None if k in self._transient else v) for k, v in self.__dict__.items()}


class StoreCallback(_StoreHolder, tune.Callback):
    """Tune callback: writes each training's state to the store the moment it changes."""

    _transient = ("_store", "_hook")

    def __init__(self, store: Store, hook: ProgressHook | None = None) -> None:
        super().__init__(store)
        self._hook = hook

    def _emit(self, event: TrainingEvent) -> None:
        if self._hook is not None:
            try:
                self._hook(event)
            except Exception:  # a progress display must never break a job
                log.exception("progress hook failed")

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        key = _trial_key(trial)
        self.store.mark_training_running(key)
        self._emit(TrainingEvent(key, "started"))

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        key = _trial_key(trial)
        if RESULT_FIELD in result:
            training = TrainingResult.model_validate_json(result[RESULT_FIELD])
            self.store.finish_training(key, training)
            self._emit(TrainingEvent(key, "succeeded", {"wall_seconds": training.wall_seconds}))
        else:
            detail = {"epoch": result.get("epoch"), "validation_loss": result.get("validation_loss")}
            self._emit(TrainingEvent(key, "epoch", detail))

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        """A trial that keeps its weights reported them (after its final result): record the checkpoint in the
        store. The first checkpoint of a key wins; a later duplicate's files are deleted."""
        result = trial.last_result or {}
        if WEIGHTS_SHA256 not in result:
            return
        key = _trial_key(trial)
        uri = checkpoint_uri(checkpoint)
        size, sha256 = int(result[WEIGHTS_BYTES]), str(result[WEIGHTS_SHA256])
        record = self.store.record_checkpoint(key, uri=uri, size_bytes=size, sha256=sha256)
        if record.uri != uri:
            log.info("training %s kept weights at %s already; deleting %s", key, record.uri, uri)
            delete_weights(uri)
        self._emit(TrainingEvent(key, "weights", {"uri": record.uri, "size_bytes": record.size_bytes}))

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        key = _trial_key(trial)
        error = _trial_error(trial)
        log.warning("training %s failed (attempt %s), retrying: %s", key, trial.num_failures, error)
        self._emit(TrainingEvent(key, "retrying", {"error": error}))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        key = _trial_key(trial)
        error = _trial_error(trial)
        record = self.store.get_training(key)
        if record is None or record.state != TrainingState.SUCCEEDED:
            self.store.fail_training(key, error)
        self._emit(TrainingEvent(key, "failed", {"error": error}))


class CancelStopper(_StoreHolder, tune.Stopper):
    """Stops every trial once the job's control says so (cancel or interrupt here, or a cancel requested in
    the store by another process)."""

    _transient = ("_store", "_control")

    def __init__(self, control: JobControl, store: Store) -> None:
        super().__init__(store)
        self.job_id = control.job_id
        self._control: JobControl | None = control
        self.stopped = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if not self.stopped:
            if self._control is None:  # unpickled by a restored run: the store's flag is all there is
                self._control = JobControl(self.job_id)
            self.stopped = self._control.stop_requested(self.store)
        return self.stopped


@dataclass
class BatchOutcome:
    """What one Tune run did: keys that succeeded, failed (after retries) and were left unfinished."""

    succeeded: list[str]
    failed: dict[str, str]
    unfinished: list[str]
    stopped: bool


class TuneRunner:
    """Runs batches of trainings with Ray Tune, one ``Tuner.fit()`` at a time (Tune is not safe for two
    fits in threads of one process: make one runner per process and share it)."""

    def __init__(self, trainable: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.trainable = trainable or train_trial
        self._fit_lock = threading.Lock()

    def run(
        self,
        trainings: list[tuple[str, TrainingSpec]],
        *,
        control: JobControl,
        store: Store,
        resources: Resources,
        storage_path: Path,
        max_retries: int = 2,
        hook: ProgressHook | None = None,
    ) -> BatchOutcome:
        """Train ``trainings`` (key, spec) as Tune trials; block until all end or the control stops them."""
        if not trainings:
            return BatchOutcome([], {}, [], stopped=False)
        fn = tune.with_resources(
            named_trainable(self.trainable), {"cpu": resources.cpus, "gpu": resources.gpus}
        )
        stopper = CancelStopper(control, store)
        storage_path.mkdir(parents=True, exist_ok=True)
        grid = [{"key": k, "spec": s.model_dump(mode="json")} for k, s in trainings]
        tuner = tune.Tuner(
            fn,
            param_space={"training": tune.grid_search(grid), NICE_FIELD: training_nice()},
            tune_config=tune.TuneConfig(
                reuse_actors=True,
                max_concurrent_trials=None,
                trial_name_creator=trial_name,  # "sdn fidelity 0.2 seed 0": the network, not a hash
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=f"job-{control.job_id}-{int(time.time() * 1000)}",
                storage_path=str(storage_path.resolve()),
                callbacks=[StoreCallback(store, hook)],
                stop=stopper,
                failure_config=tune.FailureConfig(max_failures=max_retries),
                verbose=0,
            ),
        )
        with self._fit_lock:
            try:
                tuner.fit()
            except Exception as exc:  # Tune raises only on driver-side problems; trial errors are in results
                log.error("Tune run of job %s failed: %s\n%s", control.job_id, exc, traceback.format_exc())
                raise
        keys = [k for k, _ in trainings]
        states = store.get_trainings(keys)
        succeeded = [k for k in keys if states[k].state == TrainingState.SUCCEEDED]
        failed = {k: states[k].error or "failed" for k in keys if states[k].state == TrainingState.FAILED}
        unfinished = [k for k in keys if k not in failed and k not in succeeded]
        return BatchOutcome(succeeded, failed, unfinished, stopped=stopper.stopped)
