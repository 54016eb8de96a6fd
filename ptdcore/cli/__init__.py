"""The ``ptdcore`` command line (:mod:`.main`): ``demo``, ``bench``, ``check``, ``cache``."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
