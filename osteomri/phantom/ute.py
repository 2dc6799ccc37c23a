"""UTE signals of the digital lumbar-spine phantom: bound and pore water of the cortical shell, MT pools.

Per-tissue truth (3 T) in :data:`UTE_TISSUE_PARAMETERS`: cortical bone and endplates carry bound water (short
T2*, ~0.3 ms) and pore water (long T2*, ~2 ms) (Du et al., J Magn Reson 2010;207:304; Biswas et al., Bone
2012;50:749) and a macromolecular pool like the human tibia (f 54.5 %, T2 15.4 us, RM0w 9.5 1/s, R1w 8.9 1/s;
Ma et al., MRM 2018;79:1941). Other tissues are single long-T2* water (T2* = 1 / R2* of the phantom) with a
small macromolecular pool. The proton density is the phantom's ``pd``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.models.ute.mt import UteMtModel, two_pool_signal
from osteomri.phantom.spine import TISSUE_PARAMETERS, TISSUES, SpinePhantom

UTE_TE_S = tuple(np.array([0.032, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.4, 1.8, 2.2, 2.8, 3.4, 4.4]) * 1e-3)

# tissue -> fraction_short, t2star_short_ms, t2star_long_ms, mmf, t2_macromolecule_us, exchange_rate_hz,
# t2_free_water_ms, r1_free_water_hz (tissues not listed: mono-exponential water with T2* = 1/R2*)
UTE_TISSUE_PARAMETERS = pd.DataFrame.from_records(
    [
        ("cortex", 0.80, 0.30, 2.0, 0.545, 15.4, 9.5, 0.5, 8.9),
        ("endplate", 0.65, 0.35, 2.5, 0.45, 14.0, 12.0, 0.7, 7.0),
    ],
    columns=["tissue", "fraction_short", "t2star_short_ms", "t2star_long_ms", "mmf", "t2_macromolecule_us",
             "exchange_rate_hz", "t2_free_water_ms", "r1_free_water_hz"],
).set_index("tissue")

SOFT_MT = {"mmf": 0.08, "t2_macromolecule_us": 12.0, "exchange_rate_hz": 20.0, "t2_free_water_ms": 30.0,
           "r1_free_water_hz": 1.0}


def ute_truth(phantom: SpinePhantom) -> dict[str, np.ndarray]:
    """Voxel-wise truth: s0 (= pd), fraction_short, t2star_short_ms, t2star_long_ms and the MT parameters."""
    tissues = phantom.tissues.data
    shape = tissues.shape
    out = {k: np.zeros(shape) for k in ("s0", "fraction_short", "t2star_short_ms", "t2star_long_ms", "mmf",
                                           "t2_macromolecule_us", "exchange_rate_hz", "t2_free_water_ms",
                                           "r1_free_water_hz")}
    out["s0"] = np.asarray(phantom.maps["pd"].data, dtype=float)
    r2 = np.asarray(phantom.maps["r2star_hz"].data, dtype=float)
    out["t2star_long_ms"] = np.where(r2 > 0, 1e3 / np.maximum(r2, 1e-9), 0.0)
    out["t2star_short_ms"][:] = 0.3
    for k, v in SOFT_MT.items():
        out[k][:] = v
    for tissue, row in UTE_TISSUE_PARAMETERS.iterrows():
        sel = tissues == TISSUES[tissue]
        for k in row.index:
            out[k][sel] = row[k]
    return out


def _rician(signal: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    return np.abs(signal + rng.normal(scale=sd, size=signal.shape) + 1j * rng.normal(scale=sd, size=signal.shape))


def synthesize_ute(phantom: SpinePhantom, te_s: tuple[float, ...] | np.ndarray = UTE_TE_S, snr: float = 100.0,
                   seed: int | None = 0) -> Image:
    """Multi-echo UTE magnitude: PD [f_s e^(-TE/T2*_s) + (1 - f_s) e^(-TE/T2*_l)], Rician noise SD = 1/snr."""
    te = np.asarray(te_s, dtype=float)
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be positive, got {snr}")
    t = ute_truth(phantom)
    te_ms = te * 1e3
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.exp(-te_ms / np.maximum(t["t2star_short_ms"], 1e-9)[..., None])
        long_ = np.where(t["t2star_long_ms"][..., None] > 0,
                         np.exp(-te_ms / np.maximum(t["t2star_long_ms"], 1e-9)[..., None]), 0.0)
    fs = t["fraction_short"][..., None]
    signal = t["s0"][..., None] * (fs * short + (1 - fs) * long_)
    meta = {"EchoTime": te.tolist(), "MagneticFieldStrength": 3.0, "SeriesDescription": "phantom UTE multi-echo",
            "PhantomSNR": float(snr)}
    return Image(_rician(signal, 1.0 / snr, np.random.default_rng(seed)).astype(np.float32), phantom.affine.copy(),
                 meta)


def synthesize_ute_mt(phantom: SpinePhantom, protocol: dict[str, Any], snr: float = 100.0,
                      seed: int | None = 0) -> Image:
    """UTE-MT magnitudes of the two-pool model for an ``mt`` protocol (noise SD = 1/snr of PD = 1)."""
    model = UteMtModel.from_protocol(protocol)
    t = ute_truth(phantom)
    body = t["s0"] > 0
    sig = np.zeros(t["s0"].shape + (model.offsets_hz.size,))
    sig[body] = two_pool_signal(model.offsets_hz, model.w2, t["s0"][body], t["mmf"][body],
                                t["exchange_rate_hz"][body], t["t2_free_water_ms"][body] * 1e-3,
                                t["t2_macromolecule_us"][body] * 1e-6, t["r1_free_water_hz"][body],
                                model.r1_macromolecule_hz)
    meta = {"SeriesDescription": "phantom UTE-MT", "PhantomSNR": float(snr)}
    return Image(_rician(sig, 1.0 / snr, np.random.default_rng(seed)).astype(np.float32), phantom.affine.copy(), meta)


__all__ = ["UTE_TE_S", "UTE_TISSUE_PARAMETERS", "synthesize_ute", "synthesize_ute_mt", "ute_truth",
           "TISSUE_PARAMETERS"]
