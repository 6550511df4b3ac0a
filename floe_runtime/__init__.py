"""floe-runtime: a data pipeline runtime and the editor tooling around it.

The top-level package stays import-light: the CLI and the language server start
from here, so nothing heavy (dbt, Dagster, pyiceberg) is imported at this level.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
