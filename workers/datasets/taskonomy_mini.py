"""``taskonomy-mini``: a procedural stand-in for Taskonomy, the dataset of Standley et al. (ICML 2020).

Random indoor scenes (a room with floor and walls, balls, crates, benches, barrels and pillars with
procedural textures, a point light) are ray cast analytically in numpy (``workers.render``) at 16, 32
or 64 pixels square. Every image comes with the paper's nine tasks: set 1 — ``s`` semantic
segmentation, ``d`` depth, ``n`` surface normals, ``k`` 2D keypoints, ``e`` 2D edges; set 2 — ``a``
autoencoding, ``o`` occlusion edges, ``r`` reshading, ``c`` principal curvature.

As in the paper (which splits Taskonomy by building), the train, validation and test splits come from
different scenes; each scene is seen from ``views_per_scene`` cameras. Data are generated once,
deterministically from ``seed``, and cached as an ``.npz`` named by the fingerprint under the data
directory (param ``data_dir``, else ``$TASKGROUP_DATA_DIR``, else ``~/.cache/taskgrouping``). The file is
written atomically (temporary file + rename) under a lock, so concurrent Ray workers generate it once
and never read half a file.

Departures from Taskonomy: synthetic primitives instead of scanned buildings; tiny images; Harris
instead of SURF keypoints; analytic instead of mesh-estimated curvature (see ``workers.render.maps``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from workers.datasets import register
from workers.datasets.base import SPLITS, Dataset, Split, SplitName, TaskInfo, TaskKind
from workers.datasets.preprocessing import Preprocessing
from workers.render.codec import CODECS
from workers.render.generate import GENERATOR_VERSION, generate_split
from workers.render.maps import CURVATURE_SCALE, DEPTH_MAX
from workers.render.scene import CLASS_NAMES, NUM_CLASSES

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "TASKGROUP_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/taskgrouping"


def _dense(name: str, channels: int, description: str) -> TaskInfo:
    return TaskInfo(
        name=name, kind=TaskKind.DENSE, channels=channels, loss="l1", metric="mae", description=description
    )


TASKS: tuple[TaskInfo, ...] = (
    TaskInfo(
        name="s",
        kind=TaskKind.SEGMENTATION,
        classes=NUM_CLASSES,
        loss="cross-entropy",
        metric="accuracy",
        description=f"semantic segmentation, per-pixel class in {', '.join(CLASS_NAMES)}",
    ),
    _dense("d", 1, f"depth: z-buffer distance / {DEPTH_MAX:g} m, in [0, 1], sky 1"),
    _dense("n", 3, "surface normals in the camera frame (x right, y up, z to the camera), in [-1, 1], sky 0"),
    _dense("k", 1, "2D keypoints: Harris corner response of the grey image, squashed to [0, 1)"),
    _dense("e", 1, "2D edges: Canny edges of the grey image, lightly blurred, in [0, 1]"),
    _dense("a", 3, "autoencoding: the RGB input itself, in [0, 1]"),
    _dense("o", 1, "occlusion edges: 1 on the near side of depth discontinuities, else 0"),
    _dense("r", 1, "reshading: n·v shading from a light at the camera with unit albedo, in [0, 1]"),
    _dense(
        "c",
        2,
        f"principal curvatures (largest first) as tanh(kappa * {CURVATURE_SCALE:g} m): sphere 1/r, "
        "cylinder side 1/r and 0, flat 0",
    ),
)


class TaskonomyMiniParams(BaseModel):
    """Parameters of ``taskonomy-mini``; all but ``data_dir`` are part of the fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, ge=0, description="generator seed: same seed and sizes, same bytes")
    resolution: Literal[16, 32, 64] = Field(32, description="image side in pixels (16 is for tests)")
    train_images: int = Field(2000, ge=1, le=1_000_000)
    validation_images: int = Field(500, ge=1, le=1_000_000)
    test_images: int = Field(500, ge=1, le=1_000_000)
    views_per_scene: int = Field(4, ge=1, le=64, description="camera views rendered per random scene")
    data_dir: str | None = Field(
        None, description=f"cache folder; default ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR}"
    )

    def images(self, split: SplitName) -> int:
        return {"train": self.train_images, "validation": self.validation_images, "test": self.test_images}[
            split
        ]


@register
class TaskonomyMini(Dataset):
    """Procedural Taskonomy stand-in: RGB inputs (3, R, R) and nine dense/segmentation tasks."""

    name: ClassVar[str] = "taskonomy-mini"
    Params: ClassVar[type[BaseModel]] = TaskonomyMiniParams
    input_kind: ClassVar[Literal["image", "vector"]] = "image"
    version: ClassVar[str] = GENERATOR_VERSION
    class_names: ClassVar[tuple[str, ...]] = CLASS_NAMES

    params: TaskonomyMiniParams

    def __init__(self, params: BaseModel) -> None:
        if not isinstance(params, TaskonomyMiniParams):
            params = TaskonomyMiniParams.model_validate(params.model_dump())
        super().__init__(params)
        self._splits: dict[SplitName, Split] | None = None
        self._scenes: dict[SplitName, np.ndarray] = {}

    def tasks(self) -> list[TaskInfo]:
        return list(TASKS)

    def input_shape(self) -> tuple[int, ...]:
        return (3, self.params.resolution, self.params.resolution)

    def preprocessing(self) -> Preprocessing:
        """RGB images of (3, R, R) with uint8 pixels / 255 and no other normalisation (as the cache decodes
        them); outputs as trained (maps in [0, 1] or [-1, 1]), the segmentation's class names attached."""
        default = super().preprocessing()
        outputs = dict(default.outputs)
        outputs["s"] = outputs["s"].model_copy(update={"class_values": list(CLASS_NAMES)})
        return default.model_copy(update={"outputs": outputs})

    def fingerprint(self) -> str:
        """Name, generator version and params but ``data_dir`` (where data live is not what they are)."""
        params = self.params.model_dump(mode="json", exclude={"data_dir"})
        payload = {"name": self.name, "version": self.version, "params": params}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def data_dir(self) -> Path:
        root = self.params.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        return Path(root).expanduser() / self.name

    def cache_path(self) -> Path:
        return self.data_dir() / f"{self.fingerprint()}.npz"

    def load(self) -> dict[SplitName, Split]:
        """The three splits: read from the cache, or generated, cached, then decoded the same way."""
        if self._splits is None:
            arrays = self._read(self.cache_path())
            if arrays is None:
                arrays = self._generate_and_cache()
            self._splits = {split: self._decode(arrays, split) for split in SPLITS}
            self._scenes = {split: arrays[f"{split}.scene"] for split in SPLITS}
        return self._splits

    def generate(self) -> dict[str, np.ndarray]:
        """Render all splits and encode them for storage (keys ``<split>.<rgb|scene|task>``)."""
        p = self.params
        arrays: dict[str, np.ndarray] = {}
        for split in SPLITS:
            rendered = generate_split(p.seed, split, p.images(split), p.resolution, p.views_per_scene)
            arrays[f"{split}.rgb"] = CODECS["rgb"].encode(rendered.rgb)
            arrays[f"{split}.scene"] = rendered.scene
            for task, codec in CODECS.items():
                if task != "rgb":
                    arrays[f"{split}.{task}"] = codec.encode(rendered.maps[task])
        return arrays

    def _generate_and_cache(self) -> dict[str, np.ndarray]:
        path = self.cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process generates; the others wait, then read
            try:
                arrays = self._read(path)
                if arrays is not None:
                    return arrays
                logger.info("taskonomy-mini: generating %s (%s)", path.name, self.params)
                arrays = self.generate()
                self._write(path, arrays)
                return arrays
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        logger.info("taskonomy-mini: cached %s", path)

    def _read(self, path: Path) -> dict[str, np.ndarray] | None:
        """The cached arrays, or None when absent or unreadable (then it is regenerated)."""
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            logger.warning("taskonomy-mini: unreadable cache %s (%s); regenerating", path, exc)
            return None
        expected = {f"{s}.{k}" for s in SPLITS for k in (*CODECS, "scene")}
        if not expected <= arrays.keys():
            logger.warning("taskonomy-mini: incomplete cache %s; regenerating", path)
            return None
        logger.info("taskonomy-mini: read %s", path)
        return arrays

    @staticmethod
    def _decode(arrays: dict[str, np.ndarray], split: SplitName) -> Split:
        inputs = torch.from_numpy(CODECS["rgb"].decode(arrays[f"{split}.rgb"]))
        targets = {
            task: torch.from_numpy(codec.decode(arrays[f"{split}.{task}"]))
            for task, codec in CODECS.items()
            if task != "rgb"
        }
        targets["a"] = inputs  # autoencoding reconstructs the input: same tensor, no copy
        return Split(inputs=inputs, targets={t.name: targets[t.name] for t in TASKS})

    def scenes(self, split: SplitName) -> np.ndarray:
        """(N,) scene index of every image of ``split`` within that split (its views share it)."""
        self.load()
        return self._scenes[split]
