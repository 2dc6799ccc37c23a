"""Exception types shared by every layer.

The CLI turns any :class:`OsteoMRIError` into one clear line on stderr and a non-zero exit code.
"""


class OsteoMRIError(Exception):
    """Base class of every error osteomri raises on purpose."""


class InputError(OsteoMRIError, ValueError):
    """Bad input data or parameters: wrong echo count, NaN-only data, mismatched shapes, ..."""


class MetadataError(InputError):
    """Acquisition metadata needed for a computation is missing or inconsistent (e.g. no EchoTime)."""


class UnknownLabelError(InputError):
    """A label preset, label value or vertebral level that is not known."""


class InputWarning(UserWarning):
    """Input accepted, but with an assumption the user should know of (e.g. a voxel size a file lacks).

    The CLI prints each as one ``warning:`` line on stderr.
    """
