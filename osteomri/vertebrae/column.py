"""The spinal column on the mid-sagittal slab: the canal's centreline and the disc/body profile in front of it.

1. The spinal canal is the longest continuous vertical ridge of the slab (CSF bright on water, T2w and PD images;
   dark on T1w, fat and PDFF images). Its centreline is the best top-to-bottom path through the vertical-ridge
   map (Frangi et al. 1998 ridge measure; path by dynamic programming, one column of drift per row at most).
2. The vertebral bodies lie in front of it. Along the centreline, the intensity averaged over a band 10–35 mm
   anterior of the canal, measured along the local normal of the centreline (so tilted discs stay sharp), gives
   a profile with one extremum per disc (bright discs on water/T2w, dark on T1w/PDFF).
3. Discs are the profile's peaks with a vertebral pitch prior (20–55 mm between neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from osteomri.vertebrae.discs import ridge_map

CANAL_SIGMA_MM = 3.0
BAND_MM = (10.0, 36.0)  # anterior offsets of the body band from the canal centreline
MIN_PITCH_MM, MAX_PITCH_MM = 20.0, 55.0


@dataclass
class Column:
    """Canal centreline a(s), the anterior normal at each row, the disc profile and the discs found."""

    polarity: int  # +1: discs (and CSF) brighter than the bodies
    canal_a: np.ndarray  # (n_s,) canal centre column per row (mm = px in the working grid)
    normal: np.ndarray  # (n_s, 2) unit (ds, da) pointing anterior, perpendicular to the centreline
    profile: np.ndarray  # (n_s,) polarity * body-band intensity, disc peaks positive
    discs: np.ndarray  # (n_d,) rows of the disc centres along the centreline
    score: float  # periodicity of the profile (peak prominence relative to its spread)
    path_strength: float
    disc_below_cut: bool = False  # a disc-like peak below the lowest disc, too near the image edge to confirm


def _best_path(cost: np.ndarray, max_step: int = 1) -> np.ndarray:
    """Top-to-bottom path maximising the summed ``cost`` (one entry per row), at most ``max_step`` columns per row."""
    n_s, n_a = cost.shape
    acc = cost[0].copy()
    back = np.zeros((n_s, n_a), dtype=np.int16)
    for s in range(1, n_s):
        stacked = np.stack([np.roll(acc, k) if k else acc for k in range(-max_step, max_step + 1)])
        for i, k in enumerate(range(-max_step, max_step + 1)):
            if k > 0:
                stacked[i, :k] = -np.inf
            elif k < 0:
                stacked[i, k:] = -np.inf
        best = np.argmax(stacked, axis=0)
        acc = stacked[best, np.arange(n_a)] + cost[s]
        back[s] = best - max_step
    path = np.zeros(n_s, dtype=int)
    path[-1] = int(np.argmax(acc))
    for s in range(n_s - 1, 0, -1):
        path[s - 1] = path[s] - back[s, path[s]]
    return path


def find_column(slab: np.ndarray, polarity: int, n_paths: int = 4) -> Column | None:
    """The canal centreline and disc profile for one polarity (None when no periodic profile is found)."""
    strength, _, na = ridge_map(slab, polarity, CANAL_SIGMA_MM)
    vertical = strength * (np.abs(na) >= np.cos(np.deg2rad(35)))
    vertical = vertical / (np.percentile(vertical[vertical > 0], 99) + 1e-9) if np.any(vertical > 0) else vertical
    n_s, n_a = slab.shape
    margin = int(0.1 * n_a)
    cost = np.clip(vertical, 0, 1.0).copy()
    cost[:, :margin] = cost[:, n_a - margin:] = 0
    smooth = ndimage.gaussian_filter(slab.astype(np.float64), 1.5)
    # the canal lies deep in the back: ignore the 40 mm under the posterior skin (subcutaneous fat, skin folds)
    body = ndimage.gaussian_filter(slab.astype(np.float64), 3.0) > 0.12
    cols = np.arange(n_a)[None, :]
    skin = np.where(body.any(axis=1), n_a - 1 - np.argmax(body[:, ::-1], axis=1), n_a - 1)
    skin = ndimage.median_filter(skin, 31, mode="nearest")
    cost[cols > (skin[:, None] - 40)] = 0
    front = np.where(body.any(axis=1), np.argmax(body, axis=1), 0)  # and the anterior wall: not the canal either
    front = ndimage.median_filter(front, 31, mode="nearest")
    cost[cols < (front[:, None] + 25)] = 0
    found: list[Column] = []
    for _ in range(n_paths):
        path = _best_path(cost - 0.05)
        col = _profile_column(smooth, path, polarity, float(cost[np.arange(n_s), path].mean()))
        if col is not None:
            found.append(col)
        lo = np.clip(path - 15, 0, n_a)
        hi = np.clip(path + 16, 0, n_a)
        for s in range(n_s):
            cost[s, lo[s]:hi[s]] = 0
    if not found:
        return None
    # the canal: a strong continuous ridge with a periodic (disc/body) profile in front of it
    return max(found, key=lambda c: c.score * c.path_strength)


def _profile_column(smooth: np.ndarray, path: np.ndarray, polarity: int, path_strength: float) -> Column | None:
    n_s, n_a = smooth.shape
    a = ndimage.gaussian_filter1d(path.astype(float), 8.0, mode="nearest")
    da = np.gradient(a)
    tangent = np.stack([np.ones_like(da), da], axis=1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # (ds, da) with da < 0: anterior
    offsets = np.arange(BAND_MM[0], BAND_MM[1] + 1, 2.0)
    ss = np.arange(n_s)[:, None] + offsets[None, :] * normal[:, 0:1]
    aa = a[:, None] + offsets[None, :] * normal[:, 1:2]
    vals = ndimage.map_coordinates(smooth, [ss.ravel(), aa.ravel()], order=1, mode="nearest").reshape(ss.shape)
    raw = polarity * vals.mean(axis=1)
    profile = raw - ndimage.uniform_filter1d(raw, 41, mode="nearest")
    spread = np.std(profile) + 1e-9
    peaks, props = signal.find_peaks(profile, distance=int(MIN_PITCH_MM * 0.6), prominence=0.3 * spread)
    found = peaks
    keep = [i for i, p in enumerate(peaks) if _is_disc(raw, int(p), spread)]
    peaks, prom = peaks[keep], props["prominences"][keep]
    chain = _regular_chain(peaks, prom)
    if len(chain) < 2:
        return None
    all_peaks = found
    peaks, prom = peaks[chain], prom[chain]
    # an end of the chain weaker than the discs inside it is an endplate against soft tissue, not a disc
    drops = np.array([_min_drop(raw, int(p)) for p in peaks])
    while peaks.size > 3 and drops[-1] < 0.4 * np.median(drops[1:-1]):
        peaks, prom, drops = peaks[:-1], prom[:-1], drops[:-1]
    while peaks.size > 3 and drops[0] < 0.4 * np.median(drops[1:-1]):
        peaks, prom, drops = peaks[1:], prom[1:], drops[1:]
    score = float(np.median(prom) / spread) * min(peaks.size, 6)
    pitch = float(np.median(np.diff(peaks)))
    below = [p for p in all_peaks if 0.7 * pitch <= p - peaks[-1] <= 1.4 * pitch and p + 12 > n_s
             and raw[p] - np.median(raw[max(0, p - 20):p - 7]) >= 0.4 * spread]
    return Column(polarity, a, normal, profile, peaks.astype(float), score, path_strength, bool(below))


def _min_drop(raw: np.ndarray, p: int) -> float:
    n = raw.size
    above = np.median(raw[max(0, p - 20):max(1, p - 7)])
    below = np.median(raw[min(n - 1, p + 8):min(n, p + 21)]) if p + 8 < n else above
    return float(min(raw[p] - above, raw[p] - below))


def _is_disc(raw: np.ndarray, p: int, spread: float) -> bool:
    """A disc has a vertebral body on both sides: the profile drops on either side by a similar amount.

    A step (the last body followed by soft tissue, or the image edge) is not a disc."""
    n = raw.size
    if p - 14 < 0 or p + 12 > n:  # at least 4-7 mm of body seen beyond the disc on each side
        return False
    above, below = np.median(raw[max(0, p - 20):p - 7]), np.median(raw[p + 8:min(n, p + 21)])
    drop_above, drop_below = raw[p] - above, raw[p] - below
    if min(drop_above, drop_below) < 0.4 * spread:
        return False
    return min(drop_above, drop_below) >= 0.25 * max(drop_above, drop_below)


def _regular_chain(peaks: np.ndarray, prom: np.ndarray) -> list[int]:
    """Indices of the longest sequence of peaks with vertebral spacing (20–55 mm, neighbours' spacing within
    a factor 1.6 of each other), ties broken by summed prominence (dynamic programming over pairs)."""
    n = peaks.size
    if n < 2:
        return list(range(n))
    best: dict[tuple[int, int], tuple[int, float]] = {}
    back: dict[tuple[int, int], tuple[int, int] | None] = {}
    for j in range(n):
        for i in range(j):
            d = peaks[j] - peaks[i]
            if not MIN_PITCH_MM <= d <= MAX_PITCH_MM:
                continue
            score, prev = (2, float(prom[i] + prom[j])), None
            for h in range(i):
                if (h, i) not in best:
                    continue
                ratio = d / (peaks[i] - peaks[h])
                if not 1 / 1.6 <= ratio <= 1.6:
                    continue
                cand = (best[(h, i)][0] + 1, best[(h, i)][1] + float(prom[j]))
                if cand > score:
                    score, prev = cand, (h, i)
            best[(i, j)], back[(i, j)] = score, prev
    if not best:
        return [int(np.argmax(prom))]
    key = max(best, key=best.get)
    chain = [key[1], key[0]]
    while back[key] is not None:
        key = back[key]
        chain.append(key[0])
    return sorted(chain)
