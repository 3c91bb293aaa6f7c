"""The `hartool` command: a click group whose subcommands are imported only when invoked."""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType
from typing import Any

import click

from .. import __version__
from ..core.errors import HartoolError

# name -> "module:attribute". Loading lazily keeps `hartool stream` free of TensorFlow and fast to start.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("hartool.cli.data_cmd:data", "Inspect datasets: subjects, windows per class, channels."),
    "train": ("hartool.cli.train_cmd:train", "Train a CNN / LSTM / feature classifier and write a model bundle."),
    "quantize": ("hartool.cli.quantize_cmd:quantize", "Convert a bundle to TFLite/ONNX, fp32 to int8."),
    "export": ("hartool.cli.export_cmd:export", "Export a bundle's int8 model as a C99 / Arduino library."),
    "benchmark": ("hartool.cli.bench_cmd:benchmark", "Measure size, accuracy and latency of artifacts."),
    "compare": ("hartool.cli.bench_cmd:compare", "Compare benchmark JSON files side by side."),
    "stream": ("hartool.cli.stream_cmd:stream", "Classify live IMU samples from a board, a phone app or a file."),
    "monitor": ("hartool.cli.monitor_cmd:monitor", "Watch every device publishing under an MQTT prefix."),
    "simulate": ("hartool.cli.simulate_cmd:simulate", "Virtual IMU board on a pty, or a phone app / MCU sender."),
    "record": ("hartool.cli.record_cmd:record", "Record labelled sessions (keys switch labels) to CSV."),
    "enroll": ("hartool.cli.enroll_cmd:enroll", "Teach a bundle a new activity on the device (no TensorFlow)."),
    "demo": ("hartool.cli.demo_cmd:demo", "Train, quantize, benchmark and stream, end to end."),
    "service": ("hartool.cli.service_cmd:service", "Print a systemd unit that runs `hartool stream` as a service."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module on first use (click's examples/complex pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name in _TF_COMMANDS:  # with --debug too: a model must not depend on how verbose its run was
            from ..train.tflog import reproducible_tf_env

            reproducible_tf_env()
        if not ctx.params.get("debug"):
            quiet_third_party_logs()  # before the command's module (and perhaps TensorFlow) is imported
            if cmd_name in _TF_COMMANDS:
                from ..train.tflog import import_tensorflow_quietly

                import_tensorflow_quietly()
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table so `hartool --help` imports no subcommand module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HartoolError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hartool")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one error line.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Edge toolkit for Human Activity Recognition from IMU data.

    \b
    Example:
      hartool train --arch cnn --out bundles/cnn
      hartool quantize bundles/cnn
      hartool benchmark bundles/cnn
      hartool simulate --subject 9 &   # prints a /dev/pts/N path
      hartool stream bundles/cnn --port /dev/pts/N
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# Set before TensorFlow is imported (when a command is looked up, or in a child process that inherits the environment): its C++ INFO and
# WARNING lines (oneDNN, CPU features, absl's "before InitializeLog"), gRPC's and its Python loggers' chatter would
# bury hartool's own output. --debug leaves them on; a value the user set is kept.
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2", "GRPC_VERBOSITY": "ERROR"}
_QUIET_LOGGERS = ("tensorflow", "absl", "keras", "h5py")
_TF_COMMANDS = ("train", "quantize", "demo", "export")  # they import TensorFlow: quietly, up front


def quiet_third_party_logs() -> None:
    """Silence TensorFlow/absl/oneDNN log noise for this process and its children (not our own status)."""
    import logging
    import os

    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP act as Ctrl-C: whatever the command does on SIGINT (flush, summary, rename) it does here.

    systemd and docker stop services with SIGTERM and a closed terminal sends SIGHUP; without this the process
    would die mid-write, leaving a `.part` file and no summary.
    """
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored or default (not Python's): still end the way Ctrl-C ends
        raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _as_interrupt)
    cli(prog_name="hartool")


if __name__ == "__main__":  # pragma: no cover - `python -m hartool.cli`
    sys.exit(main())
