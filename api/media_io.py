"""Image and video files of the command line: frames in, annotated pictures out.

:func:`read_frames` reads a folder of frames (in natural name order) or a video file as
RGB arrays; :func:`output_writer` writes annotated frames to a video file or a folder;
:func:`check_writable` checks an output path before any work is done and
:func:`save_image` writes one RGB image. Mistakes raise :class:`api.cli.UsageError`.
OpenCV and PIL are imported inside the functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from api.cli import UsageError

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def read_frames(source: str) -> tuple[Iterator[np.ndarray], int | None]:
    """The frames of a folder of images or of a video, and their count if known.

    Args:
        source: folder of frames (sorted by name, numbers in natural order) or a video.

    Returns:
        ``(frames, count)``: an iterator of ``(H, W, 3)`` uint8 RGB arrays and the number
        of frames, or ``None`` when the video does not say.

    Raises:
        UsageError: no such path, no image files, not a video, or an unreadable video.
    """
    from matcher.images import load_image

    path = Path(source)
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        if not files:
            raise UsageError(f"folder {source} holds no image files")
        return (load_image(p) for p in files), len(files)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise UsageError(
                f"{source} is neither a folder of frames nor a video "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})"
            )
        import cv2

        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise UsageError(f"cannot open video {source}")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None

        def gen() -> Iterator[np.ndarray]:
            try:
                while True:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    yield np.ascontiguousarray(bgr[:, :, ::-1])
            finally:
                cap.release()

        return gen(), count
    raise UsageError(f"no such file or folder: {source}")


def output_writer(output: str):
    """A ``write(index, rgb)`` callable; ``write(None, None)`` finishes."""
    import cv2

    path = Path(output)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        check_writable(output, VIDEO_SUFFIXES, "a video file")
        state: dict = {}

        def write_video(index, rgb):
            if index is None:
                if "writer" in state:
                    state["writer"].release()
                return
            if "writer" not in state:
                h, w = rgb.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                state["writer"] = cv2.VideoWriter(str(path), fourcc, 25.0, (w, h))
                if not state["writer"].isOpened():
                    raise UsageError(f"cannot write video {output}")
            state["writer"].write(np.ascontiguousarray(rgb[:, :, ::-1]))

        return write_video
    if path.suffix:
        raise UsageError(
            f"-o {output}: give a video file ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder"
        )
    path.mkdir(parents=True, exist_ok=True)

    def write_frame(index, rgb):
        if index is not None:
            save_image(str(path / f"{index:06d}.png"), rgb)

    return write_frame


def check_writable(output: str, suffixes: set[str], what: str) -> None:
    """Check that ``output`` has one of ``suffixes`` and that its folder exists.

    Raises:
        UsageError: the wrong suffix (``what`` names the expected kind) or no such folder.
    """
    path = Path(output)
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"-o {output}: expected {what} ({', '.join(sorted(suffixes))})")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"-o {output}: folder {parent} does not exist")


def save_image(path: str, rgb: np.ndarray) -> None:
    """Write an ``(H, W, 3)`` uint8 RGB array to ``path`` (format from its suffix)."""
    from PIL import Image

    Image.fromarray(rgb).save(path)
