"""``osteomri mrs`` end to end: a synthetic multi-TE NIfTI-MRS series, a real vendor file, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.models.mrs import MrsModel
from osteomri.phantom.mrs import simulate_marrow_fids

pytest.importorskip("nifti_mrs")
TE = [0.011, 0.015, 0.020, 0.025, 0.030]


def _write_series(folder, fids, te, *, dwell=5e-4, mhz=123.2, drop=None):
    from nifti_mrs.create_nmrs import gen_nifti_mrs

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, t in enumerate(te):
        img = gen_nifti_mrs(fids[i].reshape(1, 1, 1, -1).astype(np.complex64), dwell, mhz)
        if drop != "EchoTime":
            img.add_hdr_field("EchoTime", t)
        img.add_hdr_field("SequenceName", "svs_st")
        p = folder / f"te{int(round(t * 1000)):02d}.nii.gz"
        img.save(p)
        paths.append(p)
    return paths


def _fids(pdff=40.0, snr=150.0):
    model = MrsModel(TE, 123.2, 5e-4)
    fids, _ = simulate_marrow_fids(model, 1024, pdff_percent=pdff, ndb=2.9, water_t2_ms=22, fat_t2_ms=60,
                                   water_linewidth_hz=25, fat_linewidth_hz=18, phase_rad=0.7, shift_hz=5,
                                   snr=snr, rng=np.random.default_rng(0))
    return fids[0]


def test_multi_te_series_folder_and_files(tmp_path):
    paths = _write_series(tmp_path / "series", _fids(), TE)
    out = tmp_path / "out"
    assert main(["mrs", str(tmp_path / "series"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "series_mrs.tsv", sep="\t")
    row = table.set_index("parameter")
    assert row.loc["mrs_pdff_percent", "value"] == pytest.approx(40, abs=4 * row.loc["mrs_pdff_percent", "sd"])
    assert row.loc["water_t2_ms", "value"] == pytest.approx(22, abs=4 * row.loc["water_t2_ms", "sd"])
    assert row.loc["ndb", "units"] == "1" and np.isfinite(row["sd"]).sum() >= 15
    meta = json.loads((out / "series_mrs.json").read_text())
    assert meta["acquisition"]["te_s"] == pytest.approx(TE) and meta["acquisition"]["sequence"] == "steam"
    assert len(meta["provenance"]["inputs"]) == 5 and meta["qc"]["n_converged"] == 1
    assert (out / "series_mrs.png").stat().st_size > 10_000
    # the same series given as files, in any order
    out2 = tmp_path / "out2"
    assert main(["mrs", *map(str, paths[::-1]), "--out", str(out2), "--prefix", "x"]) == 0
    t2 = pd.read_csv(out2 / "x_mrs.tsv", sep="\t").set_index("parameter")
    assert t2.loc["mrs_pdff_percent", "value"] == pytest.approx(row.loc["mrs_pdff_percent", "value"], abs=1e-6)


def test_separate_scans_with_drift_are_registered(tmp_path):
    """Echoes acquired as separate scans, each with its own phase and a few Hz of drift: --align-echoes."""
    fids = _fids(pdff=40.0, snr=200.0)
    t = np.arange(fids.shape[-1]) * 5e-4
    rng = np.random.default_rng(5)
    drift = np.exp(2j * np.pi * rng.uniform(-3, 3, 5)[:, None] * t + 1j * rng.uniform(-np.pi, np.pi, 5)[:, None])
    _write_series(tmp_path / "series", fids * drift, TE)
    out = tmp_path / "out"
    assert main(["mrs", str(tmp_path / "series"), "--out", str(out)]) == 0  # echoes aligned by default
    row = pd.read_csv(out / "series_mrs.tsv", sep="\t").set_index("parameter")
    assert row.loc["mrs_pdff_percent", "value"] == pytest.approx(40, abs=1.0)
    assert row.loc["water_t2_ms", "value"] == pytest.approx(22, rel=0.05)
    out2 = tmp_path / "out2"
    assert main(["mrs", str(tmp_path / "series"), "--out", str(out2), "--no-align-echoes"]) == 0
    meta = json.loads((out2 / "series_mrs.json").read_text())
    assert meta["qc"]["n_at_bound"] == 1  # the common-phase model cannot fit drifting echoes: flagged


@pytest.mark.shared_data
def test_real_single_te_file_needs_no_t2(shared_data, tmp_path, capsys):
    """A single-TE file fits by default without T2 correction (a warning says so); --t2 asks for what one
    echo time cannot give: one line, nothing written."""
    pytest.importorskip("spec2nii")
    src = shared_data("mrs") / "SVS_30.rda"
    out = tmp_path / "out"
    assert main(["mrs", str(src), "--out", str(out), "--t2"]) == 2
    assert "at least 2 different echo times" in capsys.readouterr().err
    assert not out.exists()
    # this is a brain/QA-phantom spectrum (no fat, metabolite peaks): read without T2 correction, it is refused
    # as not water + fat instead of reporting an impossible fat fraction
    assert main(["mrs", str(src), "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not T2-corrected" in err and "does not read as marrow water + fat" in err
    assert not out.exists()


def test_implausible_fat_fraction_is_flagged():
    """A spectrum with the fat peaks' shape but negative fat (what metabolite peaks can look like) is flagged."""
    model = MrsModel(TE, 123.2, 2.5e-4, sequence="steam", mixing_time_s=0.01)
    fids, _ = simulate_marrow_fids(model, 1024, pdff_percent=np.array([30.0, 30.0]), ndb=2.8, water_t2_ms=30.0,
                                   fat_t2_ms=60.0, water_linewidth_hz=20.0, fat_linewidth_hz=20.0)
    fit = model.fit(fids)
    assert not fit.implausible().any()
    fit.values["mrs_pdff_percent"] = np.array([30.0, -40.0])
    assert fit.implausible().tolist() == [False, True]


def _fails(argv, out, capsys, match):
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert len(err.strip().splitlines()) <= 2  # one message (rich may wrap it)
    assert not out.exists() or not any(out.iterdir())


def test_bad_input_one_line_nothing_written(tmp_path, capsys):
    out = tmp_path / "out"
    txt = tmp_path / "notes.txt"
    txt.write_text("not a spectrum")
    _fails(["mrs", str(txt)], out, capsys, "notes.txt")
    # mismatched echo series: another dwell time
    a = _write_series(tmp_path / "a", _fids()[:1], TE[:1])
    b = _write_series(tmp_path / "b", _fids()[1:2], TE[1:2], dwell=4e-4)
    _fids_args = [str(a[0]), str(b[0])]
    _fails(["mrs", *_fids_args], out, capsys, "mismatched echo series")
    # a water reference of another acquisition
    _write_series(tmp_path / "ok", _fids(), TE)
    _fails(["mrs", str(tmp_path / "ok"), "--water-ref", str(b[0])], out, capsys, "does not match")
    # NaN in the FIDs
    bad = _fids()
    bad[2, 10] = np.nan
    _write_series(tmp_path / "nan", bad, TE)
    _fails(["mrs", str(tmp_path / "nan")], out, capsys, "NaN")
    # no echo time in the header
    _write_series(tmp_path / "note", _fids()[:2], TE[:2], drop="EchoTime")
    _fails(["mrs", str(tmp_path / "note")], out, capsys, "no echo time")
