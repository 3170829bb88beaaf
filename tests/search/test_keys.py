"""Training keys are stable: the store reuses a training exactly when its key is the same, so a key that
changes silently retrains (or orphans) every stored training. The pinned values were computed with the code
of commit a7f5028 (before lookahead, architectures and Pareto MTL existed) and must never change; every new
setting keys its trainings apart."""

from __future__ import annotations

from search.keys import training_key
from workers.spec import DatasetRef, LookaheadSettings, ModelSettings, TrainingSettings, TrainingSpec

PINNED_SPEC = TrainingSpec(
    dataset=DatasetRef(name="planted", params={"groups": [2, 1]}),
    tasks=["a2", "a1", "b1"],
    capacity=0.5,
    fidelity=0.2,
    seed=3,
    settings={"epochs": 12, "optimizer": "sgd", "weighting": "gradnorm", "weighting_options": {"alpha": 1.0}},
    threads=1,
)
PINNED = {
    "default": "c65391347e2e544f0e5541cead5f8ae9",
    "custom": "4c28a3d28b03c25b5987b0c7270610b2",
}


def default_spec() -> TrainingSpec:
    return TrainingSpec(dataset=DatasetRef(name="planted"), tasks=["a1", "a2"])


def custom_spec() -> TrainingSpec:
    return TrainingSpec(
        dataset=DatasetRef(name="planted", params={"samples": 64}),
        tasks=["b1", "a1"],
        capacity=0.5,
        fidelity=0.2,
        seed=3,
        settings=TrainingSettings(epochs=7, weighting="dwa", weighting_options={"temperature": 3.0}),
    )


def with_settings(spec: TrainingSpec, **update: object) -> TrainingSpec:
    settings = TrainingSettings.model_validate({**spec.settings.model_dump(), **update})
    return spec.model_copy(update={"settings": settings})


def test_keys_of_existing_trainings_are_pinned() -> None:
    assert training_key(PINNED_SPEC, "fp-123") == "a89440ac0840efe5aa2fe10d10d8b80b"
    default = TrainingSpec(dataset=DatasetRef(name="planted"), tasks=["a1"])
    assert training_key(default, "fp") == "a24bcf96e9bc54888f59c734d8381319"
    assert training_key(default_spec(), "fp") == PINNED["default"]
    assert training_key(custom_spec(), "0123456789abcdef") == PINNED["custom"]
    explicit = with_settings(default_spec(), model={"architecture": "hard", "options": {}})
    assert explicit.settings.model == ModelSettings()
    assert training_key(explicit, "fp") == PINNED["default"]


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


def test_architectures_and_their_options_key_apart() -> None:
    base = default_spec()
    keys = {training_key(base, "fp")}
    for model in (
        {"architecture": "cross-stitch"},
        {"architecture": "cross-stitch", "options": {"mixing": 0.0}},
        {"architecture": "mtan"},
        {"architecture": "mtan", "options": {"reduction": 4}},
        {"architecture": "nddr"},
    ):
        keys.add(training_key(with_settings(base, model=model), "fp"))
    assert len(keys) == 6
    same = with_settings(base, model={"architecture": "cross-stitch"})
    assert training_key(same.model_copy(update={"tasks": ["a2", "a1"]}), "fp") == training_key(same, "fp")


def test_pareto_preferences_key_apart() -> None:
    base = default_spec()
    family = [{"preferences": 5, "preference": k} for k in range(5)]
    keys = {training_key(with_settings(base, weighting="pareto", weighting_options=o), "fp") for o in family}
    three = with_settings(base, weighting="pareto", weighting_options={"preferences": 3})
    keys.add(training_key(three, "fp"))
    keys.add(training_key(with_settings(base, weighting="mgda"), "fp"))
    assert len(keys) == 7
