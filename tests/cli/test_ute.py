"""``osteomri ute`` end to end on the phantom's UTE signals: maps with registry units, a per-vertebra table,
one clear line for bad input and nothing written."""

import json

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.io import load_image, save_nifti
from osteomri.models.registry import map_spec
from osteomri.phantom import make_spine_phantom
from osteomri.phantom.spine import TISSUES
from osteomri.phantom.ute import synthesize_ute, synthesize_ute_mt, ute_truth
from osteomri.vertebrae.labels import phantom_labels


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=(8, 64, 80), voxel_size_mm=(3.0, 3.2, 3.6), seed=0)


def test_ute_t2star_cli_maps_and_vertebra_table(phantom, tmp_path):
    ute = synthesize_ute(phantom, snr=400, seed=1)
    src = save_nifti(ute, tmp_path / "sub-01_ute.nii.gz")
    labels = save_nifti(phantom_labels(phantom, "spineps"), tmp_path / "seg.nii.gz")
    out = tmp_path / "out"
    rc = main(["ute", str(src), "--out", str(out), "--exam-id", "sub-01", "--labels", str(labels)])
    assert rc == 0
    spec = map_spec("fraction_short")
    fs_path = out / f"sub-01_{spec.suffix}.nii.gz"
    sidecar = json.loads(fs_path.with_name(fs_path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Units"] == "1" and sidecar["Provenance"]["inputs"][0]["name"] == "sub-01_ute.nii.gz"
    assert sidecar["Provenance"]["parameters"]["model"]["te_s"] == pytest.approx(ute.meta["EchoTime"])
    fs = load_image(fs_path).data
    cortex = phantom.tissues.data == TISSUES["cortex"]
    assert np.nanmedian(fs[cortex]) == pytest.approx(0.80, abs=0.03)  # truth of the cortical shell
    assert np.isnan(fs[phantom.tissues.data == TISSUES["background"]]).all()  # air is not fitted
    table = pd.read_csv(out / "sub-01_ute_vertebrae.tsv", sep="\t")
    assert {"L1", "L5"} <= set(table["level"]) and "t2star_long_ms" in set(table["map"])


def test_ute_mt_cli_with_protocol(phantom, tmp_path):
    protocol = {"kind": "mt", "offsets_hz": np.tile([2000.0, 5000.0, 10000.0, 15000.0, 20000.0], 3).tolist(),
                "pulse_flip_deg": np.repeat([500.0, 1000.0, 1500.0], 5).tolist(), "pulse_duration_s": 8e-3,
                "tr_s": 0.1, "excitation_flip_deg": 10.0, "r1_water_hz": 8.9}
    (tmp_path / "protocol_mt.json").write_text(json.dumps(protocol))
    src = save_nifti(synthesize_ute_mt(phantom, protocol, snr=2000, seed=2), tmp_path / "mt.nii.gz")
    rc = main(["ute", str(src), "--protocol", str(tmp_path / "protocol_mt.json"), "--out", str(tmp_path / "o")])
    assert rc == 0
    mmf = load_image(tmp_path / "o" / f"ute_{map_spec('mmf_percent').suffix}.nii.gz").data
    cortex = phantom.tissues.data == TISSUES["cortex"]
    assert np.nanmedian(mmf[cortex]) == pytest.approx(100 * ute_truth(phantom)["mmf"][cortex][0], abs=1.0)


def test_ute_cli_bad_protocol_one_line_nothing_written(phantom, tmp_path, capsys):
    src = save_nifti(synthesize_ute(phantom, snr=100), tmp_path / "u.nii.gz")
    (tmp_path / "bad.json").write_text('{"kind": "t2star", "echo_times_s": [0.0004, 0.0001, 0.002, 0.003, 0.004]}')
    out = tmp_path / "out"
    rc = main(["ute", str(src), "--protocol", str(tmp_path / "bad.json"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "increasing" in err and err.count("\n") == 1
    assert not out.exists()
    (tmp_path / "mt.json").write_text('{"kind": "mt", "offsets_hz": [2000, 5000], "pulse_flip_deg": [500], '
                                      '"pulse_duration_s": 0.008, "tr_s": 0.1, "excitation_flip_deg": 10, '
                                      '"r1_water_hz": 8.9}')
    rc = main(["ute", str(src), "--protocol", str(tmp_path / "mt.json"), "--out", str(out)])
    assert rc == 2 and "one entry per measurement" in capsys.readouterr().err and not out.exists()
