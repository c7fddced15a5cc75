"""`make man`: man/harperctl.1 and man/harper-agent.8, generated from the click commands.

Each tool gets one page: click-man renders the head (title, synopsis, description, options)
of the tool and of every subcommand, which becomes a section of the tool's page; this script
adds what click cannot know: the full first sentence on the NAME line, each command's
examples (from its epilog), EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO, taken
from the code that owns them (harperctl.errors, harperctl.profiles, agent.settings,
agent.cli). Help text is escaped for roff and click's "\\b" blocks stay verbatim.

The date is fixed by the version, not the day, so regenerating without changes is a no-op.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from click_man.man import ManPage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent import __version__ as agent_version  # noqa: E402
from agent.cli import EXIT_CONFIG  # noqa: E402
from agent.cli import cli as agent_cli  # noqa: E402
from agent.settings import BY_ENV, SETTINGS, Setting, default_text  # noqa: E402
from harperctl import __version__ as ctl_version  # noqa: E402
from harperctl.cli import cli as ctl_cli  # noqa: E402
from harperctl.commands.completion import COMPLETE_VAR  # noqa: E402
from harperctl.errors import EXIT_STATUS  # noqa: E402
from harperctl.profiles import ENV_NAMES, EXAMPLE, PROFILE_HELP  # noqa: E402

DATE = "2026-12-01"
NO_REWRAP = "\b"
SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)[.!?](?=\s|$)")


# --- roff text -------------------------------------------------------------------------


def escape(text: str) -> str:
    """Return `text` safe in roff: backslashes and hyphens escaped, no line read as a macro."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def help_roff(text: str) -> list[str]:
    """Return roff lines for click help text: paragraphs filled, "\\b" blocks verbatim."""
    lines: list[str] = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text or "").strip()):
        if block.startswith(NO_REWRAP):
            body = block[len(NO_REWRAP) :].strip("\n")
            lines += [".PP", ".nf", escape(body), ".fi"]
        elif block.strip():
            lines += [".PP", escape(" ".join(part.strip() for part in block.splitlines()))]
    return lines[1:] if lines[:1] == [".PP"] else lines


def first_sentence(command: click.Command) -> str:
    """Return the first sentence of a command's help, whole (click's short help is cut)."""
    paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0]
    text = " ".join(paragraph.split())
    found = SENTENCE_END.search(text)
    return text[: found.end()] if found else text


def examples_of(command: click.Command) -> list[str]:
    """Return the example command lines of a command's epilog ("Examples:" then indented)."""
    epilog = command.epilog or ""
    if "Examples:" not in epilog:
        return []
    tail = epilog.split("Examples:", 1)[1].strip("\n")
    return [ln[2:] if ln.startswith("  ") else ln for ln in tail.split("\n\n")[0].splitlines()]


def verbatim(lines: list[str]) -> list[str]:
    """Return roff lines showing `lines` as written, indented, unfilled."""
    return [".PP", ".RS 4", ".nf", *(escape(ln) for ln in lines), ".fi", ".RE"]


def definitions(items: list[tuple[str, str]]) -> list[str]:
    """Return a .TP list: each term in bold (already roff), then its text."""
    lines: list[str] = []
    for term, text in items:
        lines += [".TP", term, escape(text)]
    return lines


# --- pages ---------------------------------------------------------------------------


def walk(ctx: click.Context) -> Iterator[click.Context]:
    """Yield the context of the command and of every visible subcommand, depth first."""
    yield ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(click.Context(sub, info_name=name, parent=ctx))


def head(ctx: click.Context, version: str, folded: frozenset[str] = frozenset()) -> str:
    """Return click-man's page for one command; options named in `folded` are left out."""
    page = ManPage(ctx.command_path)
    page.version, page.date = version, DATE
    page.short_help = escape(first_sentence(ctx.command))
    page.synopsis = " ".join(ctx.command.collect_usage_pieces(ctx))
    page.description = "\n".join(help_roff(ctx.command.help or ""))
    page.options = [
        (record[0], escape(record[1]))
        for param in ctx.command.params
        if isinstance(param, click.Option) and not param.hidden and param.name not in folded
        for record in [param.get_help_record(ctx)]
        if record is not None
    ]
    return str(page)


def command_list(ctx: click.Context) -> list[str]:
    """Return a .TP list of a group's subcommands with their first sentences."""
    group = ctx.command
    if not isinstance(group, click.Group):
        return []
    items = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            items.append((f"\\fB{escape(name)}\\fP", first_sentence(sub)))
    return definitions(items)


def command_section(ctx: click.Context, version: str, folded: frozenset[str]) -> list[str]:
    """Return a subcommand as a section: synopsis, description, options, commands, examples."""
    lines = [f'.SH "{escape(ctx.command_path.upper())}"']
    for line in head(ctx, version, folded).splitlines()[3:]:  # no .TH, no NAME: the tool has one
        lines.append(line.replace(".SH ", ".SS ", 1) if line.startswith(".SH ") else line)
    if folded & {p.name for p in ctx.command.params}:
        lines += definitions([(r"\fB\-\-\fP\fISETTING\fP VALUE", FOLDED_TEXT)])
    if isinstance(ctx.command, click.Group):
        lines += [".SS COMMANDS", *command_list(ctx)]
    if examples_of(ctx.command):
        lines += [".SS EXAMPLES", *verbatim(examples_of(ctx.command))]
    return lines


FOLDED_TEXT = (
    "Every setting listed in ENVIRONMENT is also a flag named by its environment name "
    "(--REPLICATION_HOSTNAME node1); a flag wins over the environment and the config file."
)


def render(
    name: str, cli: click.Command, section: int, version: str, tail: list[str], folded=frozenset()
) -> str:
    """Return the page of one tool: head, commands, `tail` sections, EXAMPLES, SEE ALSO."""
    contexts = list(walk(click.Context(cli, info_name=name)))
    top = head(contexts[0], version).replace(
        f'"{name.upper()}" "1"', f'"{name.upper()}" "{section}"'
    )
    top = top.replace(f"{name} \\- ", f"{escape(name)} \\- ", 1)
    lines = [top.rstrip("\n"), ".SH COMMANDS", *command_list(contexts[0])]
    for ctx in contexts[1:]:
        lines += command_section(ctx, version, folded)
    lines += tail
    if examples_of(cli):
        lines += [".SH EXAMPLES", *verbatim(examples_of(cli))]
    other = "harper\\-agent\\fP(8)" if name == "harperctl" else "harperctl\\fP(1)"
    lines += [".SH SEE ALSO", f"\\fB{other}"]
    return "\n".join(lines) + "\n"


# --- harperctl's own sections ---------------------------------------------------------


def exit_status(codes: list[tuple[int, str]]) -> list[str]:
    """Return the EXIT STATUS section for (code, meaning) pairs."""
    return [".SH EXIT STATUS", *definitions([(f"\\fB{code}\\fP", text) for code, text in codes])]


def ctl_tail() -> list[str]:
    """Return harperctl's EXIT STATUS, ENVIRONMENT and FILES sections."""
    return [*exit_status(list(EXIT_STATUS)), *ctl_environment(), *ctl_files()]


def ctl_environment() -> list[str]:
    """Return the ENVIRONMENT section: the HARPERCTL_* variables and the others read."""
    env = [
        (
            f"\\fB{ENV_NAMES[key]}\\fP",
            f"Used when --{key.replace('_', '-')} is not given; wins over the profile's {key}.",
        )
        for key in ENV_NAMES
    ]
    env += [
        (r"\fBXDG_CONFIG_HOME\fP", "Folder of the profile file (default ~/.config)."),
        (
            f"\\fB{escape(COMPLETE_VAR)}\\fP",
            "Set by the completion scripts (harperctl completion); harperctl then prints "
            "completions instead of running.",
        ),
    ]
    text = (
        "Each setting is taken from the command-line option, else the environment, else "
        "the profile, else the default. An empty variable counts as unset."
    )
    return [".SH ENVIRONMENT", *help_roff(text), *definitions(env)]


def ctl_files() -> list[str]:
    """Return the FILES section: the profile file, its keys and an example."""
    keys = [(f"\\fB{escape(key)}\\fP", text) for key, text in PROFILE_HELP.items()]
    return [
        ".SH FILES",
        r"\fI$XDG_CONFIG_HOME/harperctl/config.yaml\fP",
        r"(default \fI~/.config/harperctl/config.yaml\fP)",
        ".RS 4",
        *help_roff(PROFILE_FILE_TEXT),
        ".RS 4",
        *definitions(keys),
        ".RE",
        ".PP",
        "An example:",
        *verbatim(EXAMPLE.rstrip("\n").splitlines()),
        ".RE",
    ]


PROFILE_FILE_TEXT = """\
The profile file: named sets of connection settings. It is a YAML mapping with two keys:
"profiles" (profile name to settings) and "default" (the profile used without --profile).
A missing file holds no profiles. An unknown key, a value of the wrong type, or a default
or --profile that names no profile is a usage error (exit 2) naming the file and the key.

A profile's password goes only with that profile's user: when the user comes from the
environment or an option, the profile's password is not used. A token is dropped when the
user comes from a higher layer, so an explicit --user means Basic authentication. When a
user has no password, harperctl asks for it on a terminal, and fails (exit 2) without one.

When the file holds a password or a token and group or others may read it, harperctl
warns on stderr with the command that fixes it (chmod 600). The settings of a profile:"""


# --- harper-agent's own sections ------------------------------------------------------


def setting_entry(setting: Setting) -> list[str]:
    """Return a .TP entry: the environment name, then key, kind, default and help."""
    where = (
        f"\\fI{escape(setting.key)}\\fP ({setting.kind}, default {escape(default_text(setting))})"
    )
    return [".TP", f"\\fB{escape(setting.env)}\\fP", where, ".br", escape(setting.help)]


AGENT_EXIT = [
    (0, "the node stopped cleanly after SIGTERM or SIGINT, or the command succeeded"),
    (
        1,
        "the node could not start: its root is in use by another harper-agent, or a port "
        "could not be bound; or install-service could not write the unit file",
    ),
    (
        EXIT_CONFIG,
        "a bad setting (the message names the key, the value and why), a bad "
        "schema.graphql or certificate file, or a usage error on the command line",
    ),
]
AGENT_FILES = [
    (
        "harperdb-config.yaml",
        "The settings, with HarperDB's keys (see ENVIRONMENT for each "
        "key); harper-agent init (or run, on a root without one) writes a commented one, "
        "harper-agent settings --yaml prints it; SIGHUP (systemctl reload) re-reads "
        "logging.* and replication.routes.",
    ),
    (
        "schema.graphql",
        "Tables declared in HarperDB's GraphQL form, created at start, e.g. "
        'type Dog @table(database: "dev", table: "dog") { id: ID! @primaryKey  breed: String '
        "@indexed }; @table(replicate: false) keeps a table on this node.",
    ),
    ("database/", "One SQLite file per database, <db>.sqlite, in WAL mode (storage.path)."),
    (
        "keys/",
        "This node's CA, certificate and private keys, and the keys signing operation "
        "tokens; mode 0600.",
    ),
    ("log/hdb.log", "The log (logging.path; logging.stdStreams sends it to stderr instead)."),
    ("harper-agent.lock", "Held while a node runs on the root, so two cannot share it."),
]


def agent_tail() -> list[str]:
    """Return harper-agent's EXIT STATUS, ENVIRONMENT and FILES sections."""
    env = [line for setting in SETTINGS for line in setting_entry(setting)]
    env += definitions(
        [
            (r"\fBHDB_ADMIN_USERNAME\fP", "Name of the first super user (default admin)."),
            (r"\fBHDB_ADMIN_PASSWORD\fP", "Its password; safer than the --admin-password flag."),
        ]
    )
    files = [(f"\\fI<root>/{escape(name)}\\fP", text) for name, text in AGENT_FILES]
    files.append(
        (r"\fI/etc/systemd/system/harper\-agent.service\fP", "Written by install-service.")
    )
    return [
        *exit_status(AGENT_EXIT),
        ".SH ENVIRONMENT",
        *help_roff(AGENT_ENV_TEXT),
        *env,
        ".SH FILES",
        *help_roff("The root folder (--root, else $ROOTPATH, else ./data) holds:"),
        *definitions(files),
    ]


AGENT_ENV_TEXT = """\
Every setting has an environment name, HarperDB's flattened key (replication.hostname is
REPLICATION_HOSTNAME), which is also its command-line flag. Flags win over the environment,
which wins over harperdb-config.yaml, which wins over the defaults. An empty variable counts
as unset."""


def main(out: Path = ROOT / "man") -> None:
    """Write both pages into `out`."""
    out.mkdir(exist_ok=True)
    (out / "harperctl.1").write_text(render("harperctl", ctl_cli, 1, ctl_version, ctl_tail()))
    agent = render("harper-agent", agent_cli, 8, agent_version, agent_tail(), frozenset(BY_ENV))
    (out / "harper-agent.8").write_text(agent)
    print(f"wrote {out}/harperctl.1 and {out}/harper-agent.8")


if __name__ == "__main__":
    main()
