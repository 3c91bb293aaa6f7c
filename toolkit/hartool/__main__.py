"""`python -m hartool` runs the CLI."""

from hartool.cli import main

main()
