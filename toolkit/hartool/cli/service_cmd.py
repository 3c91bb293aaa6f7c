"""`hartool service`: print a systemd unit that runs `hartool stream` as a service (installs nothing)."""

from __future__ import annotations

import getpass
import os
import shutil
import sys
from pathlib import Path

import click


def _executable() -> str:
    """The `hartool` the unit should run: the one on PATH, else the one running now (a venv's bin/)."""
    found = shutil.which("hartool")
    if found:
        return str(Path(found).resolve(strict=False))
    return str(Path(sys.argv[0]).resolve(strict=False))


def _check_stream_args(bundle: str, args: tuple[str, ...]) -> None:
    """Parse the arguments as `hartool stream` would, so a typo fails now and not at boot."""
    from .stream_cmd import stream

    try:
        stream.make_context("hartool stream", [bundle, *args], resilient_parsing=False)
    except click.exceptions.Exit:
        return
    except click.UsageError as exc:
        raise click.ClickException(f"these arguments would not start `hartool stream`: {exc.format_message()}") \
            from exc


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--name", default="hartool", show_default=True,
              help="Unit name (/etc/systemd/system/NAME.service); files go to /var/lib/NAME.")
@click.option("--user", default=None, help="User the service runs as [default: you].")
@click.option("--group", default="dialout", show_default=True,
              help="Supplementary group (dialout gives serial ports); '' for none.")
@click.option("--executable", default=None, help="Path of hartool to run [default: the one on PATH].")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("stream_args", nargs=-1, type=click.UNPROCESSED)
def service(name: str, user: str | None, group: str, executable: str | None, bundle: Path,
            stream_args: tuple[str, ...]) -> None:
    """Print a systemd unit running `hartool stream BUNDLE STREAM_ARGS...`.

    \b
    Example:
      hartool service ~/cnn --port /dev/ttyACM0 --summary-json summary.json | sudo tee /etc/systemd/system/hartool.service
      sudo systemctl daemon-reload && sudo systemctl enable --now hartool
      journalctl -u hartool -f        # status lines and the summary; relative files land in /var/lib/hartool
    """
    from ..runtime.systemd import ServiceSpec, unit_text

    _check_stream_args(str(bundle), stream_args)
    spec = ServiceSpec(name=name, executable=executable or _executable(), bundle=os.path.abspath(bundle),
                       stream_args=stream_args, user=user or getpass.getuser(), group=group or None)
    try:
        click.echo(unit_text(spec), nl=False)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
