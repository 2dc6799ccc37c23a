"""``osteomri cohort synth|run``: the command line, a standalone ``dask scheduler`` + ``dask worker`` on
127.0.0.1 reached through ``--scheduler``, and clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from osteomri.cli.main import main

distributed = pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process group we started (scheduler, or worker + nanny); kill it if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@contextlib.contextmanager
def standalone_cluster(workdir: Path):
    """``dask scheduler`` and one ``dask worker`` (1 thread) on free loopback ports; always cleaned up."""
    if not DASK.exists():
        pytest.skip(f"dask CLI not found beside {sys.executable}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    logs = [open(workdir / name, "w") for name in ("scheduler.log", "worker.log")]  # noqa: SIM115
    try:
        procs.append(subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir))
        procs.append(subprocess.Popen(
            [str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--memory-limit", "2GiB", "--death-timeout", "60"],
            stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=90)
            yield address, client
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()


def test_synth_then_run_through_a_standalone_scheduler(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["cohort", "synth", "--n", "4", "--out", str(ds), "--seed", "2", "--modalities", "vendor,t1w"]) == 0
    assert sorted(p.name for p in ds.glob("sub-*")) == ["sub-001", "sub-002", "sub-003", "sub-004"]
    out = tmp_path / "out"
    with standalone_cluster(tmp_path) as (address, client):
        assert main(["cohort", "run", str(ds), "--out", str(out), "--scheduler", address]) == 0
        pids = set(client.run(os.getpid).values())
    captured = capsys.readouterr()
    assert "4 exams: 4 processed without error, 0 failed, 0 already complete" in captured.out
    run = json.loads((out / "cohort_run.json").read_text())
    assert run["executor"] == "distributed scheduler"
    assert {o["worker_pid"] for o in run["outcomes"]} <= pids  # the standalone worker did the work
    patients = pd.read_csv(out / "cohort_patients.tsv", sep="\t")
    participants = pd.read_csv(ds / "participants.tsv", sep="\t")
    assert patients["exam"].tolist() == participants["participant_id"].tolist()
    assert patients["age"].tolist() == participants["age"].tolist()
    for exam in patients["exam"]:
        assert (out / exam / f"{exam}_pdff.nii.gz").exists() and (out / exam / f"{exam}_complete.json").exists()
    assert pd.read_csv(out / "errors.tsv", sep="\t").empty


def test_local_run_reports_failures_with_exit_code_1(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["cohort", "synth", "--n", "3", "--out", str(ds), "--modalities", "vendor"]) == 0
    (ds / "sub-002" / "anat" / "sub-002_r2star.nii.gz").write_bytes(b"not a nifti")
    rc = main(["cohort", "run", str(ds), "--out", str(tmp_path / "out"), "--workers", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "1 exam(s) with errors" in captured.err
    errors = pd.read_csv(tmp_path / "out" / "errors.tsv", sep="\t")
    assert errors["exam"].tolist() == ["sub-002"] and errors["stage"].tolist() == ["vendor_maps"]


def test_errors_are_one_clear_line(tmp_path, capsys):
    rc = main(["cohort", "run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "dataset not found: " in capsys.readouterr().err
    rc = main(["cohort", "synth", "--n", "2", "--out", str(tmp_path / "ds"), "--modalities", "megre,xray"])
    assert rc == 2 and "unknown modality ['xray']" in capsys.readouterr().err
    assert main(["cohort", "synth", "--n", "1", "--out", str(tmp_path / "ds"), "--modalities", "vendor"]) == 0
    rc = main(["cohort", "run", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--connect-timeout", "2",
               "--scheduler", f"tcp://127.0.0.1:{_free_port()}"])
    assert rc == 2 and "cannot reach the Dask scheduler" in capsys.readouterr().err


@pytest.mark.slow
def test_cohort_patients_is_the_input_of_study(tmp_path):
    """synth -> cohort run (local cluster, 2 workers) -> osteomri study on cohort_patients.tsv."""
    ds, out = tmp_path / "ds", tmp_path / "out"
    assert main(["cohort", "synth", "--n", "24", "--out", str(ds), "--seed", "4", "--modalities", "vendor,t1w"]) == 0
    assert main(["cohort", "run", str(ds), "--out", str(out), "--workers", "2"]) == 0
    patients = pd.read_csv(out / "cohort_patients.tsv", sep="\t")
    assert {"pdff_percent", "r2star_hz"} <= set(patients.columns)
    assert main(["study", str(out / "cohort_patients.tsv"), "--tscore", "t_score", "--marker", "pdff_percent",
                 "--marker", "r2star_hz", "--bmd", "bmd_mg_cm3", "--n-bootstrap", "20", "--out",
                 str(tmp_path / "study")]) == 0
    table1 = pd.read_csv(tmp_path / "study" / "table1.csv")
    groups = pd.read_csv(ds / "participants.tsv", sep="\t")["who_group"].value_counts()
    assert list(table1.columns[1:4]) == [f"{g} (n={groups[g]})" for g in ("normal", "osteopenia", "osteoporosis")]
