"""A line's input images: checked before the batch starts, loaded and prepared when its turn comes.

A file is checked by opening it with Pillow and ``verify()``: that reads the
header (format, size, the pixel cap against decompression bombs) and, for PNG,
every chunk's checksum, without decoding the pixels, so a thousand photos are
checked in seconds and a truncated file is caught before the first upload. A
URL is checked for its form only (http(s) or a data:image URI); fal fetches it.

fal receives the already-hosted images (URLs) first and the uploaded files
after them (the pipeline appends uploads to ``image_urls``), so a line that
lists a URL after a file is refused rather than sent in another order.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..media.images import MAX_PIXELS, decode_pixels
from ..media.inputs import InputLimits, PreparedImage, prepare

URL_PREFIXES = ("https://", "http://", "data:image/")
REMEMBERED_INPUTS = 8  # prepared files kept for reuse (a reference shared by many lines)


@dataclass(frozen=True)
class Source:
    text: str                          # as the line wrote it
    path: Path | None = None           # a local file …
    size: tuple[int, int] | None = None  # … and its (width, height) from the header

    @property
    def is_url(self) -> bool:
        return self.path is None


def check_images(images: list[str], base: Path) -> tuple[list[Source], list[str]]:
    """(sources, problems) for a line's images, paths relative to ``base``."""
    sources, problems = [], []
    for text in images:
        if text.startswith(URL_PREFIXES):
            sources.append(Source(text))
            continue
        if "://" in text or text.startswith("data:"):
            problems.append(f"images: {text[:60]!r} is neither a file nor an http(s) URL or data:image URI")
            continue
        path = (base / text).expanduser()
        size, problem = probe(path)
        if problem:
            problems.append(f"images: {text}: {problem}")
        else:
            sources.append(Source(text, path, size))
    first_file = next((i for i, s in enumerate(sources) if not s.is_url), len(sources))
    if any(s.is_url for s in sources[first_file:]):
        problems.append("images: list URLs before files; fal receives the hosted images first and the "
                        "uploaded files after them")
    return sources, problems


def probe(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((width, height), None) for a readable image file, else (None, what is wrong)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
                if size[0] * size[1] > MAX_PIXELS:
                    return None, (f"{size[0]}x{size[1]} pixels is above the {MAX_PIXELS:,}-pixel safety cap; "
                                  "downscale it first")
                image.verify()
    except FileNotFoundError:
        return None, "no such file"
    except IsADirectoryError:
        return None, "is a folder, not an image file"
    except PermissionError:
        return None, "cannot be read (permission denied)"
    except Image.DecompressionBombError:
        return None, "too large to decode safely; downscale it first"
    except (OSError, ValueError, SyntaxError) as exc:
        return None, f"not a readable image ({type(exc).__name__}: {str(exc)[:80]})"
    return size, None


class InputLoader:
    """Files → prepared inputs (media/inputs.py), the last few kept: a reference that many lines
    share is decoded and hashed once."""

    def __init__(self, reads_area: int | None, resize: str, limits: InputLimits | None = None,
                 upload_format: str = "png"):
        self.reads_area, self.resize = reads_area, resize
        self.limits, self.upload_format = limits, upload_format  # the endpoint's per-image limits
        self._kept: OrderedDict[tuple, PreparedImage] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, sources: list[Source]) -> list[PreparedImage]:
        return [self._one(source.path) for source in sources if source.path is not None]  # the files

    def _one(self, path: Path) -> PreparedImage:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        image = prepare(decode_pixels(path.read_bytes(), source=str(path)), self.reads_area, self.resize,
                        limits=self.limits, upload_format=self.upload_format, name=path.name)
        with self._lock:
            self._kept[key] = image
            while len(self._kept) > REMEMBERED_INPUTS:
                self._kept.popitem(last=False)
        return image
