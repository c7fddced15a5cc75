"""`make man`: man/harperctl.1 and man/harper-agent.8 generated from the click commands.

click-man renders each command's page; this script joins a tool's pages into one (the tool,
then every subcommand as a section) so each tool installs a single man page. The date is
fixed by the version, not the day, so regenerating without changes is a no-op.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click_man.core import generate_man_page

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent import __version__ as agent_version  # noqa: E402
from agent.cli import cli as agent_cli  # noqa: E402
from harperctl import __version__ as ctl_version  # noqa: E402
from harperctl.cli import cli as ctl_cli  # noqa: E402

DATE = "2026-12-01"


def _walk(ctx: click.Context):
    yield ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(click.Context(sub, info_name=name, parent=ctx))


def _section(page: str) -> str:
    """Keep a subcommand page's body, demoting its title to a section."""
    lines = [ln for ln in page.splitlines() if not ln.startswith(".TH ")]
    return "\n".join(ln.replace(".SH ", ".SS ", 1) if ln.startswith(".SH ") else ln for ln in lines)


def render(name: str, cli: click.Command, section: int, version: str) -> str:
    root = click.Context(cli, info_name=name)
    pages = list(_walk(root))
    first = str(generate_man_page(pages[0], version, DATE))
    first = first.replace(f'.TH "{name.upper()}" "1"', f'.TH "{name.upper()}" "{section}"')
    # click-man points at one page per command; here they are sections of this page
    first = "\n".join(ln for ln in first.splitlines() if not ln.lstrip().startswith("See \\fB"))
    parts = [first, ".SH COMMANDS"]
    for ctx in pages[1:]:
        parts.append(f'.SH "{ctx.command_path.upper()}"')
        page = str(generate_man_page(ctx, version, DATE))
        page = "\n".join(ln for ln in page.splitlines() if not ln.lstrip().startswith("See \\fB"))
        parts.append(_section(page))
    return "\n".join(parts) + "\n"


def main(out: Path = ROOT / "man") -> None:
    out.mkdir(exist_ok=True)
    (out / "harperctl.1").write_text(render("harperctl", ctl_cli, 1, ctl_version))
    (out / "harper-agent.8").write_text(render("harper-agent", agent_cli, 8, agent_version))
    print("wrote man/harperctl.1 and man/harper-agent.8")


if __name__ == "__main__":
    main()
