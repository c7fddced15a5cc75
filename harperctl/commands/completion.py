"""`harperctl completion bash|zsh|fish`: print the shell completion script.

The script is click's own: the shell runs harperctl with `_HARPERCTL_COMPLETE=<shell>_complete`
and the words typed so far, and click answers with the candidates (commands, options, choices)
before any command runs, so completing never needs settings, a password or an agent.

`complete_tables` offers DB.TABLE names from the agent for arguments that declare it: one
describe_all with the settings typed so far (options, environment, profile), never a prompt,
at most `TABLE_TIMEOUT` seconds, and nothing at all on any failure.
"""

from __future__ import annotations

import dataclasses
import os

import click
from click.shell_completion import CompletionItem, get_completion_class

from harperctl import profiles
from harperctl.commands._context import make_client
from harperctl.commands._options import examples

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_HARPERCTL_COMPLETE"
TABLE_TIMEOUT = 1.0

HELP = """Print the completion script for SHELL (bash, zsh or fish) on stdout.

\b
Where to put it:
  bash  harperctl completion bash > ~/.local/share/bash-completion/completions/harperctl
        (needs bash 4.4 and the bash-completion package; or add to ~/.bashrc:
        eval "$(harperctl completion bash)")
  zsh   harperctl completion zsh > ~/.zfunc/_harperctl
        and in ~/.zshrc, before compinit: fpath+=(~/.zfunc)
        (or add to ~/.zshrc, after compinit: eval "$(harperctl completion zsh)")
  fish  harperctl completion fish > ~/.config/fish/completions/harperctl.fish

Open a new shell afterwards. Commands, subcommands, options and their choices complete.
Table names (DB.TABLE) complete from the agent when it answers within a second.
"""


@click.command(
    help=HELP,
    epilog=examples(
        "harperctl completion bash > ~/.local/share/bash-completion/completions/harperctl",
        "harperctl completion fish > ~/.config/fish/completions/harperctl.fish",
        'eval "$(harperctl completion zsh)"',
    ),
)
@click.argument("shell", metavar="SHELL", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for `shell`."""
    root = ctx.find_root()
    complete = get_completion_class(shell)
    script = complete(root.command, {}, root.info_name or "harperctl", COMPLETE_VAR).source()
    click.echo(script, nl=False)


def complete_tables(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Return the agent's DB.TABLE names starting with `incomplete`; none on any failure."""
    try:
        names = _table_names(dict(ctx.find_root().params))
    except Exception:  # a completion must never print or raise into the shell
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _table_names(options: dict) -> list[str]:
    """Return every DB.TABLE of the agent the typed options point at (no prompt, short wait)."""
    settings = profiles.resolve(options, os.environ, lambda _message: None)
    if settings.user and settings.password is None and not settings.token:
        return []  # asking for a password in the middle of a completion is worse than nothing
    timeout = min(settings.timeout, TABLE_TIMEOUT)
    client = make_client(dataclasses.replace(settings, timeout=timeout))
    try:
        answer = client.call({"operation": "describe_all"})
    finally:
        client.close()
    return sorted(
        f"{database}.{table}"
        for database, tables in answer.items()
        if isinstance(tables, dict)
        for table in tables
    )


COMMANDS = [completion]
