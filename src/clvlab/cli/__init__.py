"""The ``clvlab`` command line (the top layer): ``app`` holds the parser and the data and model
commands, ``tracking`` the MLflow commands (log, register, promote, score, experiment)."""

from clvlab.cli.app import main

__all__ = ["main"]
