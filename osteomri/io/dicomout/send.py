"""Send DICOM results to a PACS (C-STORE SCU, pynetdicom).

``send_files(paths, host, port)`` opens one association proposing each file's SOP class with its own
transfer syntax, stores every file, and returns the C-STORE status of each (0x0000 = success). A refused
association, an unaccepted SOP class or a non-success status is one :class:`InputError` line naming the
file and the peer; nothing is retried silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from osteomri.errors import InputError


def send_files(paths: Sequence[str | os.PathLike], host: str, port: int, *, called_ae: str = "ANY-SCP",
               calling_ae: str = "OSTEOMRI", timeout_s: float = 30.0) -> dict[str, int]:
    """C-STORE ``paths`` to ``host:port`` (AE title ``called_ae``); ``{file name: status}``."""
    import pydicom
    from pynetdicom import AE

    datasets = []
    for p in paths:
        path = Path(p)
        try:
            datasets.append((path, pydicom.dcmread(path)))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear line
            raise InputError(f"cannot read {path.name} as DICOM: {exc}") from exc
    if not datasets:
        raise InputError("no DICOM file to send")
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop, syntax in sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets}):
        ae.add_requested_context(sop, syntax)
    assoc = ae.associate(host, int(port), ae_title=called_ae)
    if not assoc.is_established:
        raise InputError(f"association with {called_ae}@{host}:{port} was not established (refused, aborted "
                         "or no answer)")
    statuses: dict[str, int] = {}
    try:
        for path, ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(status.Status) if status and "Status" in status else -1
            if code != 0x0000:
                raise InputError(f"{called_ae}@{host}:{port} did not store {path.name} (status "
                                 f"{'none' if code < 0 else hex(code)})")
            statuses[path.name] = code
    finally:
        assoc.release()
    return statuses
