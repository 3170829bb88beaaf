"""The download of a finalized grouping: its networks, their preprocessing and a manifest, in one zip.

``build_bundle(sources, "bundle.zip")`` writes one from the chosen networks' checkpoints
(:mod:`workers.checkpoint`); ``load_bundle("bundle.zip").predict(frame)`` checks every file's sha256 and
predicts every task with the network that serves it. The format is :mod:`workers.bundle.manifest`
(``docs/bundle.md``).
"""

from workers.bundle.build import BundleBuildError, NetworkSource, build_bundle, export_program
from workers.bundle.inputs import BundleInputError
from workers.bundle.manifest import BUNDLE_FORMAT, BUNDLE_VERSION, BundleManifest, NetworkEntry
from workers.bundle.predict import Bundle, BundleError, load_bundle, verified_files

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "Bundle",
    "BundleBuildError",
    "BundleError",
    "BundleInputError",
    "BundleManifest",
    "NetworkEntry",
    "NetworkSource",
    "build_bundle",
    "export_program",
    "load_bundle",
    "verified_files",
]
