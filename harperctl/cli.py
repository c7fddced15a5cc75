"""The `harperctl` root command: global options, command registration, exit codes.

`main` is the console script and the one place where errors become messages on stderr and
exit codes (see `harperctl.errors`). Commands live in `harperctl.commands.<noun>`; each
module's `COMMANDS` are added from `COMMAND_MODULES`, the one list to extend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from harperctl import __version__
from harperctl.commands import (
    certs,
    cluster,
    completion,
    data,
    db,
    describe,
    op,
    role,
    search,
    sql,
    status,
    table,
    token,
    user,
    verify,
)
from harperctl.commands._context import AppContext
from harperctl.commands._options import examples
from harperctl.commands._output import JSON_HELP, MODES, add_output_options
from harperctl.errors import EXIT_INTERRUPTED, EXIT_OK, HarperctlError
from harperctl.profiles import DEFAULT_URL

COMMAND_MODULES = (
    op,
    db,
    table,
    describe,
    data,
    search,
    sql,
    user,
    role,
    token,
    cluster,
    status,
    verify,
    certs,
    completion,
)
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EPILOG = (
    "Settings come from the options, else HARPERCTL_URL, HARPERCTL_USER, HARPERCTL_PASSWORD, "
    "HARPERCTL_TOKEN and HARPERCTL_CA_FILE, else the profile (--profile or the default one in "
    "$XDG_CONFIG_HOME/harperctl/config.yaml).\n\nExit codes: 0 ok, 1 operation refused, 2 usage, "
    "3 cannot connect, 4 authentication failed, 5 agent error, 130 interrupted.\n\n"
    "Output (--output/-o, or --json; before or after any command): table on a terminal; tsv "
    "when stdout is not one: a header line, then one line per record, tab-separated, with "
    "\\\\, \\t, \\n and \\r escaped, null empty, objects as JSON; jsonl: one JSON object "
    "per record (or per answer); json: exactly the API answer. Messages, warnings and errors "
    "are single lines; warnings and errors go to stderr.\n\n"
    + examples(
        "harperctl -u admin db create dev",
        "harperctl --profile prod --json describe dev.dog",
        'harperctl sql "SELECT id, name FROM dev.dog" | cut -f2',
        "harperctl search dev.dog name 'Pen*' -o jsonl",
        "harperctl insert dev.dog dogs.ndjson",
        "harperctl --url https://n1:9925 --ca-file ca.pem status",
    )
)


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EPILOG)
@click.version_option(__version__, "--version", "-V", prog_name="harperctl")
@click.option("--url", metavar="URL", help=f"Operations API of the agent [{DEFAULT_URL}].")
@click.option("--user", "-u", metavar="NAME", help="User for Basic authentication.")
@click.option(
    "--password",
    "-p",
    metavar="PASSWORD",
    help="Password for --user; asked for (hidden) on a terminal when missing.",
)
@click.option("--token", metavar="JWT", help="Operation token, sent as Bearer authentication.")
@click.option(
    "--ca-file",
    metavar="PEM",
    help="PEM file of the CA(s) that signed the agent's certificate (env HARPERCTL_CA_FILE).",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Do not verify the agent's TLS certificate (warns on stderr).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds to wait for an answer [30].",
)
@click.option("--json", "json_output", is_flag=True, help=JSON_HELP)
@click.option(
    "--output",
    "-o",
    "output_mode",
    type=click.Choice(MODES),
    help="Output mode [table on a terminal, else tsv]; see Output below.",
)
@click.option("--profile", metavar="NAME", help="Profile from the config file to use.")
@click.pass_context
def cli(ctx: click.Context, json_output: bool, output_mode: str | None, **options: Any) -> None:
    """Drive harper-agent nodes through their operations API."""
    app = AppContext(options=options)
    ctx.obj = app
    ctx.call_on_close(app.close)
    if output_mode is not None:
        app.output.choose(output_mode, f"--output {output_mode}")
    if json_output:
        app.output.choose("json", "--json")


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)
# --json and --output after any command name too (`harperctl get dev.dog 1 --json`)
for _command in cli.commands.values():
    add_output_options(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run harperctl on `argv` (default sys.argv) and return the exit code."""
    try:
        result = cli.main(args=argv, prog_name="harperctl", standalone_mode=False)
    except (click.Abort, KeyboardInterrupt):
        click.echo("harperctl: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except HarperctlError as exc:
        click.echo(f"harperctl: {exc.message}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else EXIT_OK
