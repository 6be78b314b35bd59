"""A batch's lines: a manifest (JSON Lines or CSV) or a folder, read into one ``Line`` per edit.

JSON Lines: one object per line with ``images`` (a list of paths relative to the
manifest, or http(s)/data URLs), ``prompt``, an optional ``name`` for the output
files, and any endpoint field by its fal name (``seed``, ``image_size``,
``loras`` …); never connection settings (``CONNECTION_KEYS``). CSV: a header
row with the same columns, ``images`` separated by ``;``, ``loras`` as
``URL[:SCALE]`` separated by ``;``, ``image_size`` as a preset or
``WIDTHxHEIGHT``; an empty cell leaves the field unset. Blank lines
(and, in JSON Lines, lines starting with ``#``) are skipped. A folder
(``--each DIR``) gives one line per image file in it, in name order.

Every problem of every line is collected with its line number, so one run of
the validation (sources.py and plan.py add the images and the request) reports
them all and nothing is submitted.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import InputError, redact

# The endpoint fields a line may set, by their fal names (models/qwen.py's QwenEditRequest attributes).
# Which of them the chosen model (--model) takes is its own table's say: a field it does not take is refused
# with its line number, before the first upload (models/qwen.py's checks).
FIELDS = ("prompt", "negative_prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images",
          "seed", "enable_safety_checker", "output_format", "sync_mode", "acceleration", "loras",
          "enable_prompt_expansion")
# A manifest may be someone else's file: where the key goes and which variable holds it are this
# machine's choice (--gateway, --proxy, --key-env, the environment, config.ini), never a line's.
CONNECTION_KEYS = ("mode", "base_url", "gateway", "proxy", "proxy_url", "url", "key_env", "key", "token",
                   "connection", "upload", "endpoint_url", "host")
INTEGERS = ("num_inference_steps", "num_images", "seed")
BOOLEANS = ("enable_safety_checker", "sync_mode", "enable_prompt_expansion")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
NAME = re.compile(r"^[\w][\w .+=,@-]{0,119}$")  # a file name stem: no folders, no leading dot
MAX_REPORTED = 30  # problems shown at once; the rest are counted


@dataclass
class Line:
    """One edit as the manifest (or folder) states it."""

    number: int                    # 1-based line of the manifest, or position in the folder
    where: str                     # how messages name it: "line 12", or the file's name
    images: list[str]              # as written: paths (relative to ``base``) or URLs
    base: Path                     # the folder relative paths start from
    name: str | None = None        # output file stem; None: derived (name_lines)
    fields: dict[str, Any] = field(default_factory=dict)  # fal field name → value
    problems: list[str] = field(default_factory=list)


class ManifestError(InputError):
    """Lines of the batch are unusable; nothing was uploaded or submitted."""

    def __init__(self, problems: list[str], what: str):
        shown = problems[:MAX_REPORTED]
        if len(problems) > len(shown):
            shown.append(f"… and {len(problems) - len(shown)} more")
        super().__init__(shown)
        self.args = (redact(f"{what}: fix these lines; nothing was uploaded or submitted:\n"
                            + "\n".join(f"- {p}" for p in shown)),)


def read_manifest(path: Path) -> list[Line]:
    """The lines of a ``.csv`` file (by its suffix) or a JSON Lines file (anything else)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError([f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"], str(path)) from None
    except OSError as exc:
        raise ManifestError([f"cannot be read ({exc.strerror or exc})"], str(path)) from None
    base = path.resolve().parent
    lines = _csv_lines(text, base) if path.suffix.lower() == ".csv" else _json_lines(text, base)
    if not lines:
        raise ManifestError(["it holds no edits (one JSON object per line, or a CSV header and rows)"], str(path))
    return lines


def folder_lines(folder: Path, references: list[str]) -> list[Line]:
    """``--each DIR``: one line per image file in ``folder`` (name order), each followed by ``references``
    (URLs, or absolute paths: a line's relative paths start from ``folder``)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise ManifestError([f"cannot be listed ({exc.strerror or exc})"], str(folder)) from None
    if not files:
        raise ManifestError([f"holds no image files ({', '.join(IMAGE_SUFFIXES)})"], str(folder))
    stems = collections.Counter(p.stem for p in files)
    lines = []
    for number, path in enumerate(files, 1):
        # a.png and a.jpg side by side: each keeps its suffix in its output name
        name = path.stem if stems[path.stem] == 1 else path.name.replace(".", "_")
        lines.append(Line(number, path.name, [path.name, *references], folder.resolve(), name))
    return lines


def _json_lines(text: str, base: Path) -> list[Line]:
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        line = Line(number, f"line {number}", [], base)
        lines.append(line)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            line.problems.append(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            line.problems.append("must be a JSON object like {\"images\": [\"a.png\"], \"prompt\": \"…\"}")
            continue
        _fill(line, data, typed=True)
    return lines


def _csv_lines(text: str, base: Path) -> list[Line]:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    lines: list[Line] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ManifestError([f"line {start}: {exc}"], "the CSV manifest") from None
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            if "images" not in header:
                raise ManifestError([f"line {start}: the header row needs an 'images' column (it has "
                                     f"{', '.join(header) or 'none'})"], "the CSV manifest")
            continue
        line = Line(start, f"line {start}", [], base)
        lines.append(line)
        if len(row) > len(header):
            line.problems.append(f"{len(row)} cells but the header names {len(header)} columns")
            continue
        _fill(line, {k: v for k, v in zip(header, row) if v.strip()}, typed=False)
    return lines


def _fill(line: Line, data: dict[str, Any], typed: bool) -> None:
    """Set ``line``'s images, name and fields from one record, noting every problem."""
    images = data.pop("images", None)
    if not typed and isinstance(images, str):
        images = [part.strip() for part in images.split(";") if part.strip()]
    elif isinstance(images, str):
        images = [images]
    if images is None:
        hint = " (the manifest calls them 'images')" if {"image_urls", "image_url"} & data.keys() else ""
        line.problems.append(f"images: missing{hint}; list the input files or URLs")
    elif not isinstance(images, list) or not images or not all(isinstance(i, str) and i.strip() for i in images):
        line.problems.append("images: give a non-empty list of file paths or URLs")
    else:
        line.images = [i.strip() for i in images]
    for key in ("image_urls", "image_url"):
        data.pop(key, None)
    name = data.pop("name", None)
    if name is not None:
        if not isinstance(name, str) or not NAME.match(name.strip()):
            line.problems.append(f"name: {str(name)[:60]!r} is not a plain file name (letters, digits, "
                                 "spaces and . + = , @ - _; no folders)")
        else:
            line.name = name.strip()
    for key, value in data.items():
        if key in CONNECTION_KEYS:
            line.problems.append(f"{key}: a manifest line cannot choose the connection or its key; use "
                                 "--gateway, --proxy or --key-env, or the environment or config.ini of this machine")
            continue
        if key not in FIELDS:
            line.problems.append(f"{key}: not a field of the edit; use images, name, or one of {', '.join(FIELDS)}")
            continue
        try:
            line.fields[key] = value if typed else _from_text(key, value.strip())
        except ValueError as exc:
            line.problems.append(f"{key}: {exc}")
    if "image_size" in line.fields:
        try:
            line.fields["image_size"] = _size(line.fields["image_size"])
        except ValueError as exc:
            line.problems.append(f"image_size: {exc}")
            del line.fields["image_size"]


def _from_text(key: str, text: str) -> Any:
    """A CSV cell → the field's JSON type (the request's own checks judge the value)."""
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not valid JSON") from None
    if key in INTEGERS:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a whole number") from None
    if key == "guidance_scale":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a number") from None
    if key in BOOLEANS:
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(f"use true or false, not {text[:40]!r}")
    if key == "loras":
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _size(value: Any) -> Any:
    """image_size as the request takes it: a preset name or (width, height)."""
    if isinstance(value, dict):
        if set(value) != {"width", "height"}:
            raise ValueError('give {"width": W, "height": H}, or a preset name')
        return (value["width"], value["height"])
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        return (int(match.group(1)), int(match.group(2))) if match else value
    if isinstance(value, list) and len(value) == 2:
        return tuple(value)
    raise ValueError(f"{str(value)[:40]!r} is neither a preset name nor a width and height")


def name_lines(lines: list[Line]) -> None:
    """Give each unnamed line its first image's stem (``-2``, ``-3`` … for repeats), and note a
    name two lines share: their output files would overwrite each other."""
    taken: dict[str, Line] = {line.name.lower(): line for line in lines if line.name}
    for line in lines:
        if line.name:
            continue
        stem = _stem_of(line.images[0]) if line.images else ""
        stem = re.sub(r"[^\w .+=,@-]", "_", stem).lstrip(". ") or f"line-{line.number}"
        candidate, count = stem, 1
        while candidate.lower() in taken:
            count += 1
            candidate = f"{stem}-{count}"
        line.name = candidate
        taken[candidate.lower()] = line
    seen: dict[str, Line] = {}
    for line in lines:
        assert line.name is not None  # every line has a name by now
        other = seen.setdefault(line.name.lower(), line)
        if other is not line:
            line.problems.append(f"name: {line.name!r} is also the name of {other.where}; outputs would "
                                 "overwrite each other")


def _stem_of(image: str) -> str:
    if image.startswith("data:"):
        return ""
    return Path(image.split("?")[0].split("#")[0].rstrip("/")).stem
