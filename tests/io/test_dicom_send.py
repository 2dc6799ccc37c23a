"""A real DICOM network round trip on 127.0.0.1: osteomri's objects C-STOREd to a pynetdicom storage SCP."""

from __future__ import annotations

import dicom_factory
import numpy as np
import pandas as pd
import pydicom
import pytest

from osteomri.errors import InputError
from osteomri.io import load_image
from osteomri.io.dicomout import Segment, read_source, write_parametric_map, write_segmentation
from osteomri.io.dicomout.send import send_files
from osteomri.io.dicomout.sr import MeasuredMap, write_measurement_report
from osteomri.models.registry import MapSpec

pynetdicom = pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")


@pytest.fixture()
def scp():
    """A storage SCP in a thread on 127.0.0.1 (free port) that keeps what it receives."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import (
        Comprehensive3DSRStorage,
        ParametricMapStorage,
        SecondaryCaptureImageStorage,
        SegmentationStorage,
    )

    received: dict[str, pydicom.Dataset] = {}

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[str(ds.SOPInstanceUID)] = ds
        return 0x0000

    ae = AE(ae_title="TESTPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    for sop in (ParametricMapStorage, SegmentationStorage, Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
        ae.add_supported_context(sop, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    yield server.server_address[1], received
    server.shutdown()


def test_c_store_round_trip(tmp_path, scp):
    port, received = scp
    shape = (10, 8, 4)
    dicom_factory.write_classic_series(tmp_path / "src", {"": np.arange(np.prod(shape)).reshape(shape) % 500})
    image = load_image(tmp_path / "src")
    source = read_source(tmp_path / "src")
    data = np.random.default_rng(1).normal(30, 5, shape).astype(np.float32)
    spec = MapSpec("test_send_r2star_hz", "Hz", "R2*", "r2star", "test")
    pm = write_parametric_map(image.with_data(data), spec, source, tmp_path / "pm.dcm")
    mask = np.zeros(shape, bool)
    mask[2:6, 2:5, 1:3] = True
    seg = write_segmentation([Segment("L2 ROI", mask, "L2", "roi")], source, tmp_path / "seg.dcm")
    sent_pm, sent_seg = pydicom.dcmread(pm), pydicom.dcmread(seg)
    table = pd.DataFrame({"level": ["L2"], "map": [spec.name], "n_voxels": [24], "mean": [30.1], "median": [29.8],
                          "sd": [4.9]})
    measured = {spec.name: MeasuredMap(spec, sent_pm, sent_seg, {"L2": 1}, source.series_uids[0])}
    sr = write_measurement_report(tmp_path / "sr.dcm", table, measured, source)
    statuses = send_files([pm, seg, sr], "127.0.0.1", port, called_ae="TESTPACS")
    assert statuses == {"pm.dcm": 0, "seg.dcm": 0, "sr.dcm": 0}
    sent_sr = pydicom.dcmread(sr)
    assert set(received) == {sent_pm.SOPInstanceUID, sent_seg.SOPInstanceUID, sent_sr.SOPInstanceUID}
    assert received[sent_sr.SOPInstanceUID].ContentSequence == sent_sr.ContentSequence
    got = received[sent_pm.SOPInstanceUID]
    assert got.SOPClassUID == sent_pm.SOPClassUID and got.StudyInstanceUID == sent_pm.StudyInstanceUID
    assert got.FloatPixelData == sent_pm.FloatPixelData  # the map arrives bit for bit
    assert received[sent_seg.SOPInstanceUID].PixelData == sent_seg.PixelData


def test_no_listener_is_one_clear_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = dicom_factory.write_classic_series(tmp_path, {"": np.ones((4, 4, 1))})[0]
    with pytest.raises(InputError, match="not established"):
        send_files([path], "127.0.0.1", port, timeout_s=3)
