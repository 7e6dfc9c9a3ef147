"""The real photographs behind the real-photo one-shot set (:mod:`trainers.evaluate.real_set`).

One fixed table, :data:`SOURCES`, names every photograph the set may read, the package
that ships it, its licence and the split it belongs to. Nothing else is read: OpenCV's,
scikit-learn's and matplotlib's sample images are reserved for outside evaluation and are
deliberately absent. :func:`check_sources` fails with an error naming the missing package
and files before any work; :func:`load_photo` and :func:`load_stereo` read the pixels.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from matcher.errors import InvalidArgumentError

#: The splits, in the order that numbers them in seeds.
SPLITS = ("train", "val", "test")
#: Longer side (pixels) photographs are brought down to before anything is cut from them.
WORK_SIDE = 1024

SKIMAGE = "scikit-image"
MATE = "mate-backgrounds"


def _skimage_data_dir() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data"


#: Folder of each package's photographs; ``None`` when the package is not installed.
#: Tests point an entry at a missing folder to check the error.
SOURCE_ROOTS: dict[str, Path | None] = {
    SKIMAGE: _skimage_data_dir(),
    MATE: Path("/usr/share/backgrounds/mate"),
}
#: How to install each package, for the error message.
INSTALL_HINT = {
    SKIMAGE: "pip install scikit-image (a siammatch dependency)",
    MATE: "apt-get install --no-install-recommends mate-backgrounds (make system-deps)",
}

_CC0 = "CC0 1.0"
_PD = "public domain"
_GPL = "GPL-2+"


@dataclass(frozen=True)
class PhotoSource:
    """One photograph of the table.

    Attributes:
        name: short unique name, used in the annotations.
        package: the package shipping it (a key of :data:`SOURCE_ROOTS`).
        relpath: path inside the package's folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        licence: licence of the photograph, as its package states it.
    """

    name: str
    package: str
    relpath: str
    split: str
    licence: str

    def path(self) -> Path | None:
        """Where the file is expected, or ``None`` when its package is not installed."""
        root = SOURCE_ROOTS.get(self.package)
        return None if root is None else Path(root) / self.relpath


def _sk(name: str, file: str, split: str, licence: str) -> PhotoSource:
    return PhotoSource(name, SKIMAGE, file, split, licence)


def _mate(name: str, file: str, split: str, author: str) -> PhotoSource:
    return PhotoSource(name, MATE, file, split, f"{_GPL} ({author})")


#: The stereo pair: its left view gives the two-view references, its right view the scene.
STEREO = "motorcycle"

#: Every photograph, with its split (11 train / 7 val / 10 test photographs; the stereo
#: pair counts once). Synthetic or drawn images shipped beside these (scikit-image's
#: color.png, logo, phantom, chessboard, text; MATE's abstract and desktop artwork) are
#: left out: the set is about photographs.
SOURCES: tuple[PhotoSource, ...] = (
    # -- train
    _sk("astronaut", "astronaut.png", "train", f"{_PD} (NASA)"),
    _sk("coffee", "coffee.png", "train", f"{_CC0} (Rachel Michetti)"),
    _sk("camera", "camera.png", "train", f"{_CC0} (Lav Varshney)"),
    _sk("grass", "grass.png", "train", f"{_CC0} (CC0Textures)"),
    _sk("coins", "coins.png", "train", "no known copyright restrictions (Brooklyn Museum)"),
    _sk("ihc", "ihc.png", "train", "no known copyright restrictions (CMMI)"),
    _mate("aqua", "nature/Aqua.jpg", "train", "Charles Barbin"),
    _mate("fresh_flower", "nature/FreshFlower.jpg", "train", "Jens Ansorg"),
    _mate("green_meadow", "nature/GreenMeadow.jpg", "train", "Timothy Schellhase"),
    _mate("storm", "nature/Storm.jpg", "train", "Sergey Nazarov"),
    _mate("wood", "nature/Wood.jpg", "train", "Jean-François Fortin Tam"),
    # -- val
    _sk("chelsea", "chelsea.png", "val", f"{_CC0} (Stefan van der Walt)"),
    _sk("brick", "brick.png", "val", f"{_CC0} (CC0Textures)"),
    _sk("moon", "moon.png", "val", "no known copyright restrictions"),
    _sk("retina", "retina.jpg", "val", f"{_CC0} (Mikael Häggström)"),
    _mate("dune", "nature/Dune.jpg", "val", "Marco Cogoni"),
    _mate("rain_drops", "nature/RainDrops.jpg", "val", "blackcombwhistler07"),
    _mate("two_wings", "nature/TwoWings.jpg", "val", "Charles Barbin"),
    # -- test
    _sk("rocket", "rocket.jpg", "test", f"{_PD} (SpaceX)"),
    _sk("gravel", "gravel.png", "test", f"{_CC0} (CC0Textures)"),
    _sk("hubble", "hubble_deep_field.jpg", "test", f"{_PD} (NASA)"),
    _sk("page", "page.png", "test", "no known copyright restrictions"),
    _sk("clock", "clock_motion.png", "test", f"{_PD} (Stefan van der Walt)"),
    _mate("blinds", "nature/Blinds.jpg", "test", "Lennart Poettering, Andrea Cimitan"),
    _mate("garden", "nature/Garden.jpg", "test", "Charles Barbin"),
    _mate("lady_bird", "nature/LadyBird.jpg", "test", "Charles Barbin"),
    _mate("yellow_flower", "nature/YellowFlower.jpg", "test", "Charles Barbin"),
    _sk(STEREO, "motorcycle_left.png", "test", "Middlebury 2014 stereo (Scharstein et al.)"),
)
#: The other files of the stereo pair: right view and left-view disparity.
STEREO_RIGHT = "motorcycle_right.png"
STEREO_DISPARITY = "motorcycle_disp.npz"


def sources_of(splits: Iterable[str]) -> list[PhotoSource]:
    """The table's photographs of ``splits``, in table order."""
    wanted = set(splits)
    return [s for s in SOURCES if s.split in wanted]


def source(name: str) -> PhotoSource:
    """The table entry called ``name``."""
    for s in SOURCES:
        if s.name == name:
            return s
    raise InvalidArgumentError(f"no photograph {name!r} in the real-set table")


def _files(src: PhotoSource) -> list[Path | None]:
    files = [src.path()]
    if src.name == STEREO and files[0] is not None:
        files += [files[0].with_name(STEREO_RIGHT), files[0].with_name(STEREO_DISPARITY)]
    return files


def check_sources(splits: Iterable[str]) -> dict[str, dict[str, str]]:
    """Check every file the splits need and describe them.

    Returns:
        ``{name: {"path", "split", "licence", "package", "sha256"}}`` in table order
        (``sha256`` of the main file, so a changed photograph changes the set's identity).

    Raises:
        InvalidArgumentError: a package is not installed or a file is missing; the message
            names the package, how to install it and the missing files.
    """
    missing: dict[str, list[str]] = {}
    described = {}
    for src in sources_of(splits):
        absent = [
            str(f) if f is not None else f"<{src.package}>/{src.relpath}"
            for f in _files(src)
            if f is None or not f.is_file()
        ]
        if absent:
            missing.setdefault(src.package, []).extend(absent)
            continue
        path = src.path()
        assert path is not None
        described[src.name] = {
            "path": str(path),
            "split": src.split,
            "licence": src.licence,
            "package": src.package,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    if missing:
        parts = [
            f"package {pkg!r} ({INSTALL_HINT[pkg]}): missing {', '.join(files)}"
            for pkg, files in missing.items()
        ]
        raise InvalidArgumentError(
            "the real-photo set cannot be built, source photographs are missing: "
            + "; ".join(parts)
        )
    return described


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``HxWx3`` uint8 RGB (grey files are repeated over 3 channels)."""
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        raise InvalidArgumentError(f"cannot decode the source photograph {path}")
    return np.ascontiguousarray(data[:, :, ::-1])


def load_photo(src: PhotoSource) -> np.ndarray:
    """The photograph at working resolution: ``HxWx3`` uint8 RGB, longer side at most
    :data:`WORK_SIDE` (area-averaged down, never up)."""
    path = src.path()
    if path is None:
        raise InvalidArgumentError(f"package {src.package!r} is not installed")
    image = read_rgb(path)
    height, width = image.shape[:2]
    scale = WORK_SIDE / max(height, width)
    if scale < 1.0:
        size = (round(width * scale), round(height * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def load_stereo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The motorcycle pair at full size: left and right ``500x741x3`` uint8 RGB, and the
    left view's disparity ``500x741`` float32 (``inf`` where unknown): left pixel
    ``(x, y)`` is right pixel ``(x - d, y)``."""
    left_path = source(STEREO).path()
    if left_path is None:
        raise InvalidArgumentError(f"package {SKIMAGE!r} is not installed")
    with np.load(left_path.with_name(STEREO_DISPARITY)) as data:
        disparity = np.asarray(data["arr_0"], dtype=np.float32)
    return read_rgb(left_path), read_rgb(left_path.with_name(STEREO_RIGHT)), disparity
