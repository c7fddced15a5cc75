"""How one run prints: the output mode, chosen once, and the printing of answers in it.

Modes (`--output/-o`, or `--json` for json; both are accepted before or after any command):
  table  rich tables and text for people; the default when stdout is a terminal
  tsv    plain lines for pipes (see `harperctl.plain`); the default when it is not
  jsonl  one compact JSON value per line: each record (each item of a list), else the answer
  json   exactly the API answer; records commands pass the agent's bytes through unchanged
Prompts, warnings, progress bars and errors always go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from harperctl import plain, render, render_plain, render_records, terminal
from harperctl.client import Streamed
from harperctl.errors import UsageError

if TYPE_CHECKING:
    from harperctl.render import Console

MODES = ("table", "tsv", "jsonl", "json")
Show = Callable[["Console", Any], None]


def warn(message: str) -> None:
    """Print a warning on stderr."""
    click.echo(message, err=True)


def write(text: str) -> None:
    """Write text to stdout as it is (click.echo would strip escape codes from data)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def write_bytes(data: bytes) -> None:
    """Write bytes to stdout unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def print_json(data: Any) -> None:
    """Print exactly `data` as indented JSON on stdout."""
    write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class Output:
    """The run's output mode and console; `choose` records --json / --output wherever given."""

    def __init__(self) -> None:
        self.chosen: str | None = None
        self._source = ""
        self._mode: str | None = None
        self._console: Console | None = None

    def choose(self, mode: str, source: str) -> None:
        """Take the mode an option asks for; two options asking for different ones are refused."""
        if self.chosen is not None and self.chosen != mode:
            raise UsageError(f"{source} contradicts {self._source}: give one output mode")
        self.chosen, self._source = mode, source

    @property
    def mode(self) -> str:
        """Return the mode: the one chosen, else table on a terminal and tsv elsewhere."""
        if self._mode is None:
            auto = "table" if terminal.stdout_is_terminal() else "tsv"
            self._mode = self.chosen or auto
        return self._mode

    @property
    def console(self) -> Console:
        """Return the console render functions print on: rich's, or the plain one for pipes."""
        if self._console is None:
            table = self.mode in ("table", "json")
            self._console = render.stdout_console() if table else render_plain.PlainConsole()
        return self._console

    def emit(self, response: Any, show: Show) -> None:
        """Print a whole answer: as JSON, as JSON lines, or through the render function."""
        if self.mode == "json":
            print_json(response)
        elif self.mode == "jsonl":
            write(plain.jsonl_lines(response))
        else:
            show(self.console, response)

    def records(self, answer: Streamed, show: Show, primary_key: str | None = None) -> None:
        """Print an answer as it arrives: a JSON array as records, anything else with `show`."""
        if self.mode == "json":
            pass_through(answer)
        elif answer.is_array:
            sink = self.record_sink(primary_key)
            for batch in answer.batches():
                sink.add(batch)
            sink.close()
        else:
            self.emit(answer.value(), show)

    def record_sink(self, primary_key: str | None = None) -> plain.RecordSink:
        """Return the sink that prints records in this mode."""
        if self.mode == "tsv":
            return plain.TsvSink(write, warn, primary_key)
        if self.mode == "jsonl":
            return plain.JsonlSink(write, warn, primary_key)
        return render_records.TableSink(self.console, warn, primary_key)


def pass_through(answer: Streamed) -> None:
    """Write the answer's bytes unchanged, ending with a newline; a non-array is checked first."""
    last = b"\n"
    if not answer.is_array:
        answer.value()  # raises AgentFailed for a 2xx answer that is not JSON
        chunks = [answer.content]
    else:
        chunks = answer.raw()
    for chunk in chunks:
        if chunk:
            write_bytes(chunk)
            last = chunk[-1:]
    if last != b"\n":
        write_bytes(b"\n")


JSON_HELP = "Print exactly the API response, as JSON (same as -o json)."
OUTPUT_HELP = "Output mode [table on a terminal, else tsv]; see harperctl --help."


def _choose(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Record --json or --output given after a command name in the run's Output."""
    output = getattr(ctx.obj, "output", None)
    if not value or output is None:
        return
    if param.name == "json_output":
        output.choose("json", "--json")
    else:
        output.choose(value, f"--output {value}")


def output_options() -> list[click.Option]:
    """Return the --json and --output/-o options every command and group accepts."""
    return [
        click.Option(
            ["--json", "json_output"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_choose,
            help=JSON_HELP,
        ),
        click.Option(
            ["--output", "-o", "output_mode"],
            type=click.Choice(MODES),
            expose_value=False,
            is_eager=True,
            callback=_choose,
            help=OUTPUT_HELP,
        ),
    ]


def add_output_options(command: click.Command) -> None:
    """Give `command` and every command under it --json and --output, unless it has them."""
    taken = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    for option in output_options():
        if taken.isdisjoint(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_output_options(sub)
