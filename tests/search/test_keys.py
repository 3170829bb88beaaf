"""Training keys across architectures and weighting options: old keys are pinned, new settings key apart."""

from __future__ import annotations

import pytest

from search.keys import training_key
from workers.spec import STORED, DatasetRef, ModelSettings, TrainingSettings, TrainingSpec

#: Keys computed with the code before architectures existed (commit a7f5028); they must never change, or
#: every stored training would be retrained.
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


def test_keys_of_existing_trainings_do_not_change() -> None:
    assert training_key(default_spec(), "fp") == PINNED["default"]
    assert training_key(custom_spec(), "0123456789abcdef") == PINNED["custom"]
    explicit = with_settings(default_spec(), model={"architecture": "hard", "options": {}})
    assert explicit.settings.model == ModelSettings()
    assert training_key(explicit, "fp") == PINNED["default"]


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


def test_architecture_is_checked_when_written_not_when_stored() -> None:
    settings = {"model": {"architecture": "retired"}}
    data = {"dataset": {"name": "planted"}, "tasks": ["a1"], "settings": settings}
    with pytest.raises(ValueError, match=r"unknown architecture 'retired'; choose one of cross-stitch"):
        TrainingSpec.model_validate(data)
    stored = TrainingSpec.model_validate(data, context={STORED: True})
    assert stored.settings.model.architecture == "retired"
    bad_option = {**data, "settings": {"model": {"architecture": "mtan", "options": {"reduction": 0}}}}
    with pytest.raises(ValueError, match=r"model options for 'mtan': reduction: Input should be greater"):
        TrainingSpec.model_validate(bad_option)
    stored = TrainingSpec.model_validate(bad_option, context={STORED: True})
    assert stored.settings.model.options == {"reduction": 0}
    with pytest.raises(ValueError, match="extra"):
        ModelSettings.model_validate({"architecture": "hard", "colour": "blue"})
