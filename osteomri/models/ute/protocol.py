"""UTE protocols as data: a JSON file (or dict) names the measurement and its acquisition parameters.

Kinds and keys (SI units; one entry per measurement where a list, in the order of the data's last axis)::

    {"kind": "t2star", "echo_times_s": [3.2e-05, ...], "components": 2, "field_strength_t": 3.0}
    {"kind": "mt", "offsets_hz": [...], "pulse_flip_deg": [...], "pulse_duration_s": 0.008, "tr_s": 0.1,
     "excitation_flip_deg": 10, "pulse_shape": "fermi", "r1_water_hz": 8.9}      # or "r1_observed_hz"
    {"kind": "vfa", "flip_deg": [5, 10, 20, 30], "tr_s": 0.02}
    {"kind": "porosity_index"}        # inputs: short-TE image, then long-TE image
    {"kind": "suppression_ratio"}     # inputs: plain UTE image, then long-T2-suppressed image

Unknown kinds or keys, and missing required keys, raise :class:`~osteomri.errors.InputError` naming them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from osteomri.errors import InputError

KEYS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional)
    "t2star": ({"echo_times_s"}, {"components", "field_strength_t", "fat_spectrum", "noise_sd", "rician"}),
    "mt": ({"offsets_hz", "pulse_flip_deg", "pulse_duration_s", "tr_s", "excitation_flip_deg"},
           {"pulse_shape", "r1_water_hz", "r1_observed_hz", "r1_macromolecule_hz", "noise_sd"}),
    "vfa": ({"flip_deg", "tr_s"}, set()),
    "porosity_index": (set(), {"min_signal"}),
    "suppression_ratio": (set(), {"min_signal"}),
}
_COMMON = {"kind", "name", "description"}


def load_protocol(source: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read and check a protocol (path to JSON, or a dict)."""
    where = "protocol"
    if isinstance(source, dict):
        proto = dict(source)
    else:
        where = Path(source).name
        try:
            proto = json.loads(Path(source).read_text())
        except FileNotFoundError:
            raise InputError(f"{where}: protocol file not found") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(proto, dict):
        raise InputError(f"{where}: a protocol is a JSON object")
    kind = proto.get("kind")
    if kind not in KEYS:
        raise InputError(f"{where}: 'kind' must be one of {', '.join(KEYS)}, got {kind!r}")
    required, optional = KEYS[kind]
    missing = sorted(required - proto.keys())
    if missing:
        raise InputError(f"{where}: a {kind!r} protocol needs {', '.join(missing)}")
    unknown = sorted(proto.keys() - required - optional - _COMMON)
    if unknown:
        raise InputError(f"{where}: unknown key(s) for a {kind!r} protocol: {', '.join(unknown)}")
    if kind == "mt" and ("r1_water_hz" in proto) == ("r1_observed_hz" in proto):
        raise InputError(f"{where}: an 'mt' protocol needs exactly one of r1_water_hz and r1_observed_hz")
    return proto


def mt_arguments(protocol: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`~osteomri.models.ute.mt.UteMtModel` from an ``mt`` protocol."""
    proto = load_protocol({**protocol, "kind": "mt"})
    return {k: v for k, v in proto.items() if k not in _COMMON}
