"""The `harper-agent` command line: init, run, settings and install-service.

The only agent module importing click. Every setting of `agent.settings` is also a flag named
by its environment name, as HarperDB's own CLI takes them (`--REPLICATION_HOSTNAME node1`).
A ConfigError raised anywhere below a command becomes one line on stderr,
`harper-agent: <key>: <value>: <reason>`, and exit code 2.

`agent.node` (the composition root) is imported only when a command needs it, through
`_node_module()`, so `--help`, `settings` and the tests work without it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from agent import __version__
from agent.config import Config, load_config, render_config, write_default_config
from agent.errors import ConfigError
from agent.logs import configure_logging
from agent.settings import BY_ENV, SETTINGS, Setting, default_text

EXIT_CONFIG = 2
DEFAULT_ROOT = "./data"
UNIT_NAME = "harper-agent.service"
UNIT_ROOT = "/var/lib/harper-agent"
UNIT_USER = "harper-agent"

_METAVARS = {
    "str": "TEXT",
    "int": "N",
    "bool": "BOOL",
    "path": "PATH",
    "port": "[HOST:]PORT",
    "duration": "DURATION",
    "size": "SIZE",
    "enum": "LEVEL",
    "databases": "NAMES",
    "routes": "ROUTES",
    "list": "LIST",
}


class ConfigFailure(click.ClickException):
    """A bad setting: shown as `harper-agent: <key>: <value>: <reason>`, exit code 2."""

    exit_code = EXIT_CONFIG

    def show(self, file: Any = None) -> None:
        click.echo(f"harper-agent: {self.message}", err=True)


class AgentGroup(click.Group):
    """The command group; the one place a ConfigError turns into exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            raise ConfigFailure(str(err)) from err


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one `--<ENV_NAME>` option per setting, in the table's order."""
    for setting in reversed(SETTINGS):
        option = click.option(
            f"--{setting.env}",
            setting.env,
            metavar=_METAVARS[setting.kind],
            default=None,
            help=f"{setting.help} [{setting.key}; default: {default_text(setting)}]",
        )
        func = option(func)
    return func


def root_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --root and --config."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Config file to read instead of <root>/harperdb-config.yaml.",
    )(func)
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Root folder of the node. [default: $ROOTPATH, else {DEFAULT_ROOT}]",
    )(func)


def admin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the first admin user's name and password (HarperDB's names work too)."""
    func = click.option(
        "--admin-password",
        "--HDB_ADMIN_PASSWORD",
        "admin_password",
        envvar="HDB_ADMIN_PASSWORD",
        help="Its password [env HDB_ADMIN_PASSWORD, safer than a flag]. Without one: "
        "prompted on a terminal, else generated and printed once.",
    )(func)
    return click.option(
        "--admin-user",
        "--HDB_ADMIN_USERNAME",
        "admin_user",
        envvar="HDB_ADMIN_USERNAME",
        help="Name of the first super user [env HDB_ADMIN_USERNAME; default: admin].",
    )(func)


@click.group(
    cls=AgentGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="\b\nExamples:\n  harper-agent init --root ./data\n"
    "  harper-agent run --root ./data --REPLICATION_HOSTNAME node1\n"
    "  harper-agent settings",
)
@click.version_option(__version__, prog_name="harper-agent")
def cli() -> None:
    """Run a replicated database node in the style of HarperDB.

    Settings come from <root>/harperdb-config.yaml, the environment (HarperDB's flattened
    names, e.g. REPLICATION_HOSTNAME) and flags (--REPLICATION_HOSTNAME); flags win over
    the environment, which wins over the file.
    """


@cli.command(
    epilog="\b\nExamples:\n  harper-agent init --root ./data --admin-user admin\n"
    "  HDB_ADMIN_PASSWORD=secret harper-agent init --root /var/lib/harper-agent \\\n"
    "      --REPLICATION_HOSTNAME node1 --OPERATIONSAPI_NETWORK_HOST 127.0.0.2"
)
@root_options
@admin_options
@setting_options
def init(
    root: Path | None,
    config_file: Path | None,
    admin_user: str | None,
    admin_password: str | None,
    **settings: Any,
) -> None:
    """Create a node: config file, first admin user, CA and node certificate.

    Writes a commented harperdb-config.yaml (with the setting flags given here filled in)
    unless one exists. The admin user comes from the flags, else HDB_ADMIN_USERNAME and
    HDB_ADMIN_PASSWORD, else a prompt on a terminal; without any, the user is "admin" and
    a generated password is printed once.
    """
    config = _load(root, config_file, settings)
    if not config.config_path.exists():
        write_default_config(config.config_path, _values_to_persist(config))
    configure_logging(config)
    user, password = _admin_credentials(admin_user, admin_password, _stdin_is_tty())
    _node_module().initialize(config, user, password)


@cli.command(
    epilog="\b\nExamples:\n  harper-agent run --root ./data\n"
    "  harper-agent run --root ./n2 --OPERATIONSAPI_NETWORK_HOST 127.0.0.2 \\\n"
    "      --REPLICATION_HOSTNAME n2 --REPLICATION_ROUTES 127.0.0.1\n"
    "  LOGGING_LEVEL=debug LOGGING_STDSTREAMS=true harper-agent run"
)
@root_options
@admin_options
@setting_options
@click.pass_context
def run(
    ctx: click.Context,
    root: Path | None,
    config_file: Path | None,
    admin_user: str | None,
    admin_password: str | None,
    **settings: Any,
) -> None:
    """Start the node in the foreground; stop it with SIGTERM or Ctrl-C.

    An empty root is initialised first (the admin options apply only then). The exit code
    is the node's: 0 after a clean stop, 2 for a bad setting.
    """
    config = _load(root, config_file, settings)
    configure_logging(config)
    node = _node_module()
    code = node.serve(config, admin_user=admin_user or "admin", admin_password=admin_password)
    ctx.exit(code or 0)


@cli.command(
    "settings",
    epilog="\b\nExamples:\n  harper-agent settings\n"
    "  harper-agent settings --yaml > harperdb-config.yaml",
)
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the default config file instead.")
def settings_command(as_yaml: bool) -> None:
    """List every setting: yaml key, environment/flag name, default and meaning."""
    if as_yaml:
        click.echo(render_config(), nl=False)
        return
    for line in settings_table():
        click.echo(line)


@cli.command(
    "install-service",
    epilog="\b\nExamples:\n  sudo harper-agent install-service\n"
    "  harper-agent install-service --root /srv/harper --user harper --dry-run",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=UNIT_ROOT,
    show_default=True,
    help="Root folder the service runs on.",
)
@click.option("--user", default=UNIT_USER, show_default=True, help="User the service runs as.")
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="/etc/systemd/system",
    show_default=True,
    help="Where the unit file goes.",
)
@click.option("--dry-run", is_flag=True, help="Print the unit instead of writing it.")
def install_service(root: Path, user: str, unit_dir: Path, dry_run: bool) -> None:
    """Install a systemd unit that runs `harper-agent run` on the root as a dedicated user."""
    unit = render_unit(root.absolute(), user, shutil.which("harper-agent"))
    if dry_run:
        click.echo(unit, nl=False)
        return
    target = unit_dir / UNIT_NAME
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(unit, encoding="utf-8")
        target.chmod(0o644)
    except PermissionError as err:
        hint = "run it with sudo, or pass --unit-dir or --dry-run"
        raise click.ClickException(f"cannot write {target}: {err.strerror}; {hint}") from err
    click.echo(f"Wrote {target}. Next, as root:")
    for line in _next_steps(root.absolute(), user):
        click.echo(f"  {line}")


def main(argv: list[str] | None = None) -> None:
    """Run the `harper-agent` console script."""
    cli.main(args=argv, prog_name="harper-agent")


def settings_table() -> Iterator[str]:
    """Yield the lines of the settings table: key, env name and default, then the help."""
    key_width = max(len(s.key) for s in SETTINGS) + 2
    env_width = max(len(s.env) for s in SETTINGS) + 2
    yield f"{'KEY':<{key_width}}{'ENV / --FLAG':<{env_width}}DEFAULT"
    for setting in SETTINGS:
        yield f"{setting.key:<{key_width}}{setting.env:<{env_width}}{default_text(setting)}"
        text = f"{_kind_text(setting)}. {setting.help}"
        yield from textwrap.wrap(text, 96, initial_indent="    ", subsequent_indent="    ")


def render_unit(root: Path, user: str, executable: str | None = None) -> str:
    """Return the systemd unit with the root folder, user and executable substituted."""
    import importlib.resources  # only install-service needs it; keeps start-up lean

    template = importlib.resources.files("agent") / "systemd" / UNIT_NAME
    text = template.read_text(encoding="utf-8").replace(UNIT_ROOT, str(root))
    lines = [_unit_line(line, root, user, executable) for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def _unit_line(line: str, root: Path, user: str, executable: str | None) -> str:
    if line.startswith(("User=", "Group=")):
        return f"{line.partition('=')[0]}={user}"
    if line.startswith("ExecStart=harper-agent ") and executable:
        return line.replace("=harper-agent ", f"={executable} ", 1)
    if line.startswith("ProtectHome=") and any(map(root.is_relative_to, ("/home", "/root"))):
        return "ProtectHome=no"
    return line


def _next_steps(root: Path, user: str) -> list[str]:
    return [
        f"id -u {user} >/dev/null 2>&1 || useradd --system --home-dir {root} "
        f"--shell /usr/sbin/nologin {user}",
        f"install -d -o {user} -g {user} -m 0700 {root}",
        f"sudo -u {user} harper-agent init --root {root}",
        "systemctl daemon-reload",
        "systemctl enable --now harper-agent",
        "curl -fsS http://127.0.0.1:9925/health",
    ]


def _kind_text(setting: Setting) -> str:
    if setting.kind == "duration":
        return f"duration (bare numbers in {setting.unit})"
    return setting.kind


def _load(root: Path | None, config_file: Path | None, settings: dict[str, Any]) -> Config:
    """Load the config for a command: --root, else --ROOTPATH, else $ROOTPATH, else ./data."""
    flags = {name: settings[name] for name in BY_ENV if settings.get(name) is not None}
    chosen = root or flags.get("ROOTPATH") or os.environ.get("ROOTPATH") or DEFAULT_ROOT
    folder = Path(chosen).expanduser().absolute()
    if root is not None or "ROOTPATH" in flags:
        flags["ROOTPATH"] = str(folder)  # an explicit --root beats $ROOTPATH and the file
    return load_config(folder, config_file, flags=flags)


def _values_to_persist(config: Config) -> dict[str, Any]:
    """Return the settings given as flags to init, for the new config file (not rootPath)."""
    return {
        key: value
        for key, value in config.flat().items()
        if config.source(key) == "flag" and key != "rootPath"
    }


def _admin_credentials(
    user: str | None, password: str | None, interactive: bool
) -> tuple[str, str | None]:
    """Return (user, password); prompt for what is missing when a person is at a terminal."""
    if password is None and interactive:
        user = user or click.prompt("Admin username", default="admin")
        password = click.prompt("Admin password", hide_input=True, confirmation_prompt=True)
    return user or "admin", password


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _node_module() -> ModuleType:
    """Import agent.node on first use (tests put a fake in sys.modules["agent.node"])."""
    return importlib.import_module("agent.node")
