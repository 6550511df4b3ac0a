"""`python -m floe_runtime` runs the CLI."""

from floe_runtime.cli import main

main()
