"""floe-lsp: a language server for floe.yaml and platform.yaml over the floe analysis engine.

The server is a thin front: every finding comes from `floe_runtime.analysis`,
every field description from the config models. It never imports dbt,
Dagster or pyiceberg; heavy work runs in a `python -m floe_runtime` subprocess.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
