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
from agent.settings import BY_ENV, SETTINGS, UNSUPPORTED_BY_ENV, Setting, default_text
from agent.systemd.unit import (
    UNIT_NAME,
    UNIT_ROOT,
    UNIT_USER,
    check_root,
    next_steps,
    render_unit,
    service_command,
)

EXIT_CONFIG = 2
DEFAULT_ROOT = "./data"

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
    """Add one `--<ENV_NAME>` option per setting, in the table's order.

    Each HarperDB setting harper-agent does not support gets a hidden flag too: load_config
    ignores it with a warning saying why, as it does in the file or the environment.
    """
    for name in UNSUPPORTED_BY_ENV:
        func = click.option(f"--{name}", name, default=None, hidden=True)(func)
    for setting in reversed(SETTINGS):
        option = click.option(
            f"--{setting.env}",
            setting.env,
            metavar=_metavar(setting),
            default=None,
            help=f"{setting.help} [{setting.key}; default: {default_text(setting)}]",
        )
        func = option(func)
    return func


def _metavar(setting: Setting) -> str:
    """Return the flag's value placeholder: the kind's, or the key's last name for an enum."""
    if setting.kind == "enum":
        return setting.key.rpartition(".")[2].upper()  # LEVEL, FORMAT
    return _METAVARS[setting.kind]


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
        help="Its password [env HDB_ADMIN_PASSWORD, safer than a flag]. Used only when the "
        "root has no users yet; without one: prompted on a terminal, else generated and "
        "printed once.",
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

    An empty root is initialised first, as init does: a commented harperdb-config.yaml
    (with the setting flags given here filled in) is written when there is none, and the
    first admin user is created (the admin options apply only then; on a terminal, a
    missing password is prompted for). SIGHUP re-reads the file, the environment and these
    flags, and applies logging.* and replication.routes at once; other changed settings are
    logged as needing a restart. Under systemd (Type=notify) the node reports READY=1 once
    it serves, and pings the watchdog. The exit code is the node's: 0 after a clean stop,
    2 for a bad setting.
    """
    config = _load(root, config_file, settings)
    if not config.config_path.exists():
        write_default_config(config.config_path, _values_to_persist(config))
    configure_logging(config)
    if _is_new_root(config):
        admin_user, admin_password = _admin_credentials(admin_user, admin_password, _stdin_is_tty())
    code = _node_module().serve(
        config,
        admin_user=admin_user or "admin",
        admin_password=admin_password,
        reload=lambda: _load(root, config_file, settings),
    )
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
    try:
        check_root(root.absolute())
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--root") from None
    command = service_command()
    unit = render_unit(root.absolute(), user, command)
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
    for line in next_steps(root.absolute(), user, command):
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


def _kind_text(setting: Setting) -> str:
    if setting.kind == "duration":
        return f"duration (bare numbers in {setting.unit})"
    return setting.kind


def _load(root: Path | None, config_file: Path | None, settings: dict[str, Any]) -> Config:
    """Load the config for a command: --root, else --ROOTPATH, else $ROOTPATH, else ./data."""
    names = [*BY_ENV, *UNSUPPORTED_BY_ENV]
    flags = {name: settings[name] for name in names if settings.get(name) is not None}
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


def _is_new_root(config: Config) -> bool:
    """True when the root holds no system database yet, so `run` will create the admin."""
    return not (config.database_path / "system.sqlite").exists()


def _stdin_is_tty() -> bool:
    """True when a person can answer a prompt: stdin is a terminal we hold the foreground of.

    A node started in the background (`harper-agent run &`) must not prompt: reading the
    terminal would stop it (SIGTTIN); it gets a generated password instead.
    """
    try:
        fd = sys.stdin.fileno()
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (AttributeError, OSError, ValueError):  # no stdin, or not our controlling terminal
        return False


def _node_module() -> ModuleType:
    """Import agent.node on first use (tests put a fake in sys.modules["agent.node"])."""
    return importlib.import_module("agent.node")
