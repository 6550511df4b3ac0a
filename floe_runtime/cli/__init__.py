"""The `floe-runtime` command line: a thin front over the analysis engine and the runtime.

Start-up stays fast: this module imports only click; each command's module (and
anything heavy it needs, like pydantic, dbt or Dagster) is imported when that
command runs.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from floe_runtime import __version__

#: Command name → "module:attribute" of its click command, imported on use.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": (
        "floe_runtime.cli.validate",
        "Check floe.yaml and platform.yaml; print diagnostics.",
    ),
    "compile": (
        "floe_runtime.cli.compile:compile_command",
        "Resolve one environment into compiled artifacts.",
    ),
    "schema": ("floe_runtime.cli.schema", "Print the JSON Schema of floe.yaml or platform.yaml."),
    "init": ("floe_runtime.cli.init", "Create a new pipeline project that validates clean."),
    "diff": (
        "floe_runtime.cli.diff:diff_command",
        "Show how two environments differ, per profile the pipeline uses.",
    ),
    "run": (
        "floe_runtime.cli.runtime_commands:run",
        "Run the pipeline: dbt via Dagster, publish to Iceberg.",
    ),
    "lineage": (
        "floe_runtime.cli.runtime_commands:lineage",
        "Render a run's lineage as an HTML page.",
    ),
    "maintain": (
        "floe_runtime.cli.maintain:maintain",
        "Expire old Iceberg snapshots and remove unreferenced files.",
    ),
    "dev": (
        "floe_runtime.cli.runtime_commands:dev",
        "Start the Dagster UI on the pipeline's definitions.",
    ),
    "deploy": (
        "floe_runtime.cli.runtime_commands:deploy",
        "Print deployment configuration (Helm values).",
    ),
    "lsp": (
        "floe_runtime.cli.lsp:lsp_command",
        "Start the floe language server (stdio by default).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked (or for `--help` of one)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, _, attr = spec[0].partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr or cmd_name.replace("-", "_"))
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so `--help` imports no command module.
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="floe-runtime")
def cli() -> None:
    """floe-runtime: run data pipelines (dbt through Dagster, Apache Iceberg tables,
    OpenTelemetry and OpenLineage) described by floe.yaml and platform.yaml."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="floe-runtime")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
