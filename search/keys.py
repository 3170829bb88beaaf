"""Training keys: what makes two trainings the same, so a later job reuses an earlier one.

A key hashes (dataset fingerprint, task set, capacity, fidelity, training settings, seed). The task set
is order-free (the plan lists tasks in the job's order, but {s, d} and {d, s} are one network), and the
resources (threads, device) are not part of it: they change speed, not what is learned. (On CPU a
training is deterministic for its seed; on a GPU it is reproducible only up to nondeterministic kernels.)

A training that measures TAG's lookahead affinity (``spec.lookahead``) has its settings in the key, so it is
a different training record; when ``lookahead`` is None the payload is exactly what it was before the option
existed, so the keys of stored trainings do not change (``tests/search/test_keys.py`` pins them).

The settings' ``model`` (the architecture) is left out when it is the default (hard sharing, no options),
so the keys of trainings stored before architectures could be chosen do not change; any other
architecture or architecture option is hashed with the rest of the settings.
"""

from __future__ import annotations

import hashlib
import json

from workers.spec import TrainingSpec

KEY_VERSION = 1  # bump when the meaning of a training changes (e.g. the trainer's protocol)


def training_key(spec: TrainingSpec, fingerprint: str) -> str:
    """A stable 32-hex-digit key for ``spec`` on the dataset with ``fingerprint``."""
    settings = spec.settings.model_dump(mode="json")
    if spec.settings.model.is_default():
        del settings["model"]
    payload = {
        "v": KEY_VERSION,
        "dataset": fingerprint,
        "tasks": sorted(spec.tasks),
        "capacity": round(spec.capacity, 9),
        "fidelity": round(spec.fidelity, 9),
        "settings": settings,
        "seed": spec.seed,
    }
    if spec.lookahead is not None:  # only then: the keys of plain trainings stay what they were
        payload["lookahead"] = spec.lookahead.model_dump(mode="json")
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
