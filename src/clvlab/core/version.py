"""clvlab's version, as installed: written into every model file and MLflow model."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("clvlab")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
