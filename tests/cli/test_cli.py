"""CLI basics: version, demo end to end, one clear error line for bad input."""

import json

import pytest

from osteomri import __version__
from osteomri.cli.main import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"osteomri {__version__}"


def test_demo_writes_maps_table_and_report(tmp_path, render_html):
    rc = main(["demo", "--out", str(tmp_path), "--small"])
    folder = tmp_path / "sub-phantom"
    exam = json.loads((folder / "sub-phantom_exam.json").read_text())
    assert rc == 0, exam["errors"]
    assert (folder / "sub-phantom_T1w.nii.gz").exists()
    assert (tmp_path / "inputs" / "sub-phantom_truth.tsv").exists()
    dom = render_html(folder / "report.html")
    assert "osteomri exam report" in dom and "Provenance" in dom and "<img" in dom


def test_missing_demo_out_option_is_a_usage_error(capsys):
    assert main(["demo"]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["demo", "--out", "/proc/forbidden/x"]])
def test_unwritable_output_gives_one_line(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.count("\n") <= 2
