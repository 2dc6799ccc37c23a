"""Identity of the DICOM results: who they are of, and the keyed pseudonymisation for research export.

Clinical export copies the patient and study modules of the source series (it is the same patient and study)
and gives every object new Series and SOP Instance UIDs.

Research export (:class:`Pseudonymizer`) applies the DICOM PS3.15 Annex E **Basic Application Level
Confidentiality Profile** to the *source headers* before any object is built from them, so every object
(Parametric Maps, SEG, SR, Secondary Capture) inherits the same pseudonymised patient/study and references the
same pseudonymised source UIDs. The list of attributes and their actions (D, Z, X, U and the combinations)
is PS3.15 Table E.1-1 as shipped by the ``dicom-anonymizer`` package (``dicomfields_2026c``). Actions, all
keyed by a secret (HMAC-SHA-256), so a cohort exported with the same key gets the same pseudonyms:

* **U** (UIDs): ``2.25.<128-bit HMAC of the UID>`` — the same source UID always maps to the same new UID;
* **dates** (VR DA/DT, any action but X): shifted back by a keyed whole number of days (62–730), the same for
  every date under one key (PS3.15 "Retain Longitudinal Temporal Information with Modified Dates" option);
  times (TM) shifted by a keyed number of seconds modulo 24 h;
* **D** / **Z** on Patient ID, Patient's Name, Accession Number and other person names/identifiers: keyed
  pseudonyms (``ANON-<hash>``); other Z attributes are emptied;
* **X**: removed; private attributes: removed.

Nothing here logs values; the key is never written anywhere.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from functools import cache

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag

from osteomri.errors import InputError

_PROFILE_VERSION = "dicomfields_2026c"


@cache
def basic_profile() -> dict[int, str]:
    """PS3.15 Table E.1-1 basic profile: tag -> action (``D``, ``Z``, ``X``, ``U``, ``ZD``, ``XZ``, ...)."""
    try:
        from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    except ImportError as exc:  # optional extra
        raise InputError("--anonymize needs the 'dicom-anonymizer' package (pip install osteomri[dicom])") from exc
    tables = dicom_anonymization_database_selector(_PROFILE_VERSION)
    names = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "ZD", "X_Z_TAGS": "XZ",
             "X_D_TAGS": "XD", "X_Z_D_TAGS": "XZD", "X_Z_U_STAR_TAGS": "XZU"}
    out: dict[int, str] = {}
    for table, action in names.items():
        for tag in tables[table]:
            if isinstance(tag, tuple) and len(tag) == 2:
                out[int(Tag(tag))] = action
    return out


# Attributes whose value becomes a keyed pseudonym rather than empty (they link a cohort's exams).
_PSEUDONYMS = {"PatientID": "ANON-", "PatientName": "ANON^", "AccessionNumber": "ACC-", "StudyID": "S"}


class Pseudonymizer:
    """Keyed PS3.15 basic-profile de-identification of DICOM headers (see the module docstring).

    ``key``: a secret (bytes or text, at least 8 characters). The same key gives the same pseudonyms, UIDs and
    date shift in every run, so a cohort exported in several runs stays linked.
    """

    def __init__(self, key: bytes | str) -> None:
        key_bytes = key.encode() if isinstance(key, str) else bytes(key)
        if len(key_bytes) < 8:
            raise InputError("the anonymisation key must have at least 8 characters")
        self._key = key_bytes
        digest = self._digest("date-shift")
        self.date_shift_days = 62 + int.from_bytes(digest[:4], "big") % (730 - 62 + 1)
        self.time_shift_s = int.from_bytes(digest[4:8], "big") % 86400

    def _digest(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode(), hashlib.sha256).digest()

    def uid(self, uid: str) -> str:
        """The pseudonymous UID of ``uid`` (``2.25.<128-bit integer>``)."""
        return "2.25." + str(int.from_bytes(self._digest("uid:" + str(uid))[:16], "big"))

    def pseudonym(self, keyword: str, value: str) -> str:
        prefix = _PSEUDONYMS.get(keyword, "ANON-")
        text = self._digest(f"{keyword}:{value}").hex()[:12].upper()
        return (prefix + text)[:16]

    def shift_date(self, value: str) -> str:
        value = str(value).strip()
        if len(value) < 8 or not value[:8].isdigit():
            return ""
        try:
            day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        except ValueError:
            return ""
        return (day - dt.timedelta(days=self.date_shift_days)).strftime("%Y%m%d")

    def shift_time(self, value: str) -> str:
        digits = str(value).strip().split(".")[0]
        if len(digits) < 2 or not digits.isdigit():
            return ""
        digits = (digits + "0000")[:6]
        seconds = int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6])
        seconds = (seconds - self.time_shift_s) % 86400
        return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"

    def shift_datetime(self, value: str) -> str:
        value = str(value).strip()
        date = self.shift_date(value[:8])
        return date + (self.shift_time(value[8:14]) if len(value) > 8 else "") if date else ""

    # ---------------------------------------------------------------------------------------------------
    def anonymize(self, ds: Dataset) -> Dataset:
        """A de-identified deep copy of ``ds`` (file meta dropped; private attributes removed)."""
        out = copy.deepcopy(ds)
        if hasattr(out, "file_meta"):
            del out.file_meta
        self._apply(out, basic_profile())
        out.PatientIdentityRemoved = "YES"
        return out

    def anonymize_all(self, datasets: Iterable[Dataset]) -> list[Dataset]:
        return [self.anonymize(d) for d in datasets]

    def _apply(self, ds: Dataset, profile: dict[int, str]) -> None:
        ds.remove_private_tags()
        for elem in list(ds):
            tag = int(elem.tag)
            action = profile.get(tag)
            if elem.VR == "SQ":
                if action is not None and action.startswith("X"):
                    del ds[elem.tag]
                    continue
                for item in elem.value:
                    self._apply(item, profile)
                continue
            if action is None:
                continue
            if action.startswith("X") and action != "XZU":
                del ds[elem.tag]
            elif action in ("U", "XZU"):
                elem.value = self._uids(elem.value)
            elif elem.VR == "DA":
                elem.value = self._each(elem.value, self.shift_date)
            elif elem.VR == "TM":
                elem.value = self._each(elem.value, self.shift_time)
            elif elem.VR == "DT":
                elem.value = self._each(elem.value, self.shift_datetime)
            elif elem.keyword in _PSEUDONYMS or (action in ("D", "ZD") and elem.VR in ("LO", "SH", "PN", "CS")):
                elem.value = self.pseudonym(elem.keyword, str(elem.value)) if elem.value not in (None, "") else ""
            elif action == "D" and elem.VR in ("US", "SS", "UL", "SL", "FL", "FD", "IS", "DS"):
                elem.value = 0 if elem.VR not in ("IS", "DS") else "0"
            else:  # Z, or D without a meaningful dummy: empty
                elem.value = None

    def _uids(self, value):
        if value in (None, ""):
            return value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [self.uid(str(v)) for v in value]
        return self.uid(str(value))

    @staticmethod
    def _each(value, fn):
        if value in (None, ""):
            return value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [fn(str(v)) for v in value]
        return fn(str(value))


def write_pseudonymized_series(datasets_paths: Iterable, folder, pseudonymizer: Pseudonymizer) -> list:
    """De-identified copies (pixel data kept) of the DICOM files ``datasets_paths`` in ``folder``, named by their
    new SOP Instance UID, so that a research export holds the source images its results reference."""
    from pathlib import Path

    import pydicom

    from osteomri.io.provenance import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in datasets_paths:
        ds = pydicom.dcmread(path)
        meta = ds.file_meta
        out = pseudonymizer.anonymize(ds)
        deidentification_attributes(out)
        meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                        "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID", "PrivateInformation"):
            if keyword in meta:
                delattr(meta, keyword)
        out.file_meta = meta
        target = folder / f"{out.SOPInstanceUID}.dcm"
        with atomic_path(target) as tmp:
            out.save_as(tmp, enforce_file_format=True)
        written.append(target)
    return written


def deidentification_attributes(ds: Dataset) -> None:
    """Mark an output object as de-identified (PS3.15 basic profile + modified dates option)."""
    from highdicom.sr import CodedConcept

    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "osteomri: PS3.15 basic profile, keyed pseudonyms, dates shifted"
    items = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                           ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")):
        item = Dataset()
        concept = CodedConcept(value, "DCM", meaning)
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (concept.value, concept.scheme_designator,
                                                                          concept.meaning)
        items.append(item)
    ds.DeidentificationMethodCodeSequence = DicomSequence(items)
