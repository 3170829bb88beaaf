"""Training keys are stable: the store reuses a training exactly when its key is the same, so a key that
changes silently retrains (or orphans) every stored training. The values below were computed with the code
of commit a7f5028 (before the lookahead option existed) and must never change."""

from __future__ import annotations

from search.keys import training_key
from workers.spec import DatasetRef, LookaheadSettings, TrainingSpec

PINNED_SPEC = TrainingSpec(
    dataset=DatasetRef(name="planted", params={"groups": [2, 1]}),
    tasks=["a2", "a1", "b1"],
    capacity=0.5,
    fidelity=0.2,
    seed=3,
    settings={"epochs": 12, "optimizer": "sgd", "weighting": "gradnorm", "weighting_options": {"alpha": 1.0}},
    threads=1,
)


def test_keys_of_existing_trainings_are_pinned() -> None:
    assert training_key(PINNED_SPEC, "fp-123") == "a89440ac0840efe5aa2fe10d10d8b80b"
    default = TrainingSpec(dataset=DatasetRef(name="planted"), tasks=["a1"])
    assert training_key(default, "fp") == "a24bcf96e9bc54888f59c734d8381319"


def test_a_lookahead_training_has_its_own_key() -> None:
    """TAG's lookahead leaves the trained weights unchanged, but its result carries the affinity: a
    different training record, with a different key per lookahead setting; the plain key is untouched."""
    plain = training_key(PINNED_SPEC, "fp-123")
    every5 = PINNED_SPEC.model_copy(update={"lookahead": LookaheadSettings(every=5)})
    every10 = PINNED_SPEC.model_copy(update={"lookahead": LookaheadSettings(every=10)})
    keys = {plain, training_key(every5, "fp-123"), training_key(every10, "fp-123")}
    assert len(keys) == 3
    assert training_key(PINNED_SPEC.model_copy(update={"lookahead": None}), "fp-123") == plain
    assert training_key(TrainingSpec.model_validate(PINNED_SPEC.model_dump()), "fp-123") == plain
