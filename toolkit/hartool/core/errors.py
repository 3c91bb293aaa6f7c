"""Domain errors: every user-facing failure is one of these, turned into one clear CLI line."""


class HartoolError(Exception):
    """Base class for errors that the CLI reports as a single line (no traceback without --debug)."""


class DataError(HartoolError):
    """A dataset could not be found, decoded or windowed."""


class BundleError(HartoolError):
    """A model bundle or its manifest is missing, corrupt or of an unsupported version."""


class ModelError(HartoolError):
    """A model artifact does not load or does not match the bundle's input contract."""


class WireError(HartoolError):
    """The serial device or its byte stream cannot be used (unreadable, wrong shape, gone)."""


class ExportError(HartoolError):
    """A conversion or quantization step failed."""
