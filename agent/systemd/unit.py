"""The systemd unit `harper-agent install-service` writes, rendered from the template.

The template (harper-agent.service, beside this module) names the root /var/lib/harper-agent,
the user harper-agent and the program `harper-agent`; rendering puts in the chosen root and
user and an absolute start command, since systemd does not search the installer's PATH.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

UNIT_NAME = "harper-agent.service"
UNIT_ROOT = "/var/lib/harper-agent"
UNIT_USER = "harper-agent"


def service_command() -> list[str]:
    """Return how systemd starts this harper-agent: an absolute program path, never a name.

    The running `harper-agent` script when that is what runs (sys.argv[0], made absolute),
    else this interpreter with `-m agent`. The interpreter path is made absolute but not
    resolved: a virtualenv's python is a symlink, and resolving it would leave the venv.
    """
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "harper-agent" and script.is_file():
        return [str(script.resolve())]
    python = Path(sys.executable or "python3")
    if not python.is_absolute():
        python = Path(shutil.which(str(python)) or python).absolute()
    return [str(python), "-m", "agent"]


def render_unit(root: Path, user: str, command: list[str] | None = None) -> str:
    """Return the systemd unit with the root folder, user and start command substituted.

    `command` (default: service_command()) replaces the template's `harper-agent` in
    ExecStart; its first word must be an absolute program path.
    """
    import importlib.resources  # only install-service needs it; keeps start-up lean

    command = command or service_command()
    if not Path(command[0]).is_absolute():
        raise ValueError(f"ExecStart needs an absolute program path, not {command[0]!r}")
    template = importlib.resources.files("agent.systemd") / UNIT_NAME
    text = template.read_text(encoding="utf-8").replace(UNIT_ROOT, str(root))
    lines = [_unit_line(line, root, user, command) for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def _unit_line(line: str, root: Path, user: str, command: list[str]) -> str:
    """Substitute one line of the template."""
    if line.startswith(("User=", "Group=")):
        return f"{line.partition('=')[0]}={user}"
    if line.startswith("ExecStart=harper-agent "):
        words = " ".join(_unit_word(word) for word in command)
        return line.replace("=harper-agent ", f"={words} ", 1)
    if line.startswith("ProtectHome="):
        if _under_home(root):
            return "ProtectHome=no"
        if _under_home(Path(command[0])):  # a venv in a home folder: the program must be seen
            return "ProtectHome=read-only"
    return line


def _under_home(path: Path) -> bool:
    """True for a path ProtectHome=yes hides (home folders, root's, runtime folders)."""
    return any(map(path.is_relative_to, ("/home", "/root", "/run/user")))


def _unit_word(text: str) -> str:
    """Write one ExecStart word: '%' and '$' escaped, quoted when it holds a blank or quote."""
    text = text.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def check_root(root: Path) -> None:
    """Raise ValueError for a root the unit's lines cannot hold as written (blanks, %, $...)."""
    if any(c.isspace() or c in "\"'\\%$;" for c in str(root)):
        raise ValueError(
            f"{str(root)!r}: a service root cannot hold blanks, quotes, '\\', '%', '$' or ';'"
        )


def next_steps(root: Path, user: str, command: list[str]) -> list[str]:
    """Return the shell commands that finish the install, for the operator to run as root."""
    return [
        f"id -u {user} >/dev/null 2>&1 || useradd --system --home-dir {root} "
        f"--shell /usr/sbin/nologin {user}",
        f"install -d -o {user} -g {user} -m 0700 {root}",
        f"sudo -u {user} {shlex.join(command)} init --root {root}",
        "systemctl daemon-reload",
        "systemctl enable --now harper-agent",
        "curl -fsS http://127.0.0.1:9925/health",
    ]
