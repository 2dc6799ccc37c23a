"""Provenance records and atomic file writes.

Every output osteomri writes carries a provenance block: software version, command, parameters and
the SHA-256 of each input file. Writes go to a temporary file in the target folder, then are renamed,
so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import platform
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from osteomri._version import __version__


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, or of every file below a folder (sorted relative paths and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk_bytes):
                h.update(block)
    return h.hexdigest()


def provenance(
    command: str,
    parameters: dict[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
) -> dict[str, Any]:
    """A JSON-serialisable provenance block.

    Input paths are recorded by file name only (never full paths that may hold patient names) with
    their SHA-256.
    """
    return {
        "software": "osteomri",
        "version": __version__,
        "command": command,
        "parameters": to_jsonable(parameters or {}),
        "inputs": [{"name": Path(p).name, "sha256": sha256_file(p)} for p in inputs],
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from what results hold: dicts, lists, dataclasses, DataFrames (records), numpy
    arrays and scalars, paths; non-finite floats become ``None`` (JSON has no NaN)."""
    import dataclasses
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a pandas DataFrame
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or "".join(target.suffixes),
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | os.PathLike, obj: Any) -> Path:
    import json

    return write_text_atomic(target, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def sha256_array(array) -> str:
    """Hex SHA-256 of an array's dtype, shape and bytes (for in-memory inputs)."""
    import numpy as np

    arr = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def write_table_atomic(table: Any, target: str | os.PathLike, float_format: str | None = None) -> Path:
    """Write a pandas DataFrame atomically: tab-separated for ``.tsv``, comma-separated otherwise, no index.

    ``float_format`` (e.g. ``"%.6g"``) rounds floats; ``None`` keeps full precision.
    """
    target = Path(target)
    sep = "\t" if target.suffix.lower() == ".tsv" else ","
    with atomic_path(target) as tmp:
        table.to_csv(tmp, sep=sep, index=False, float_format=float_format)
    return target
