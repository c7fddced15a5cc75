"""Connection settings: options, environment, profiles; the only module importing `yaml`.

Each setting is taken from the first layer that has it: command-line option, environment
(HARPERCTL_URL, HARPERCTL_USER, HARPERCTL_PASSWORD, HARPERCTL_TOKEN, HARPERCTL_CA_FILE; an
empty variable counts as unset), the profile (`--profile NAME`, else the file's `default:`),
built-in default. The profile file is `$XDG_CONFIG_HOME/harperctl/config.yaml` (default
`~/.config/harperctl/config.yaml`); `EXAMPLE` below is the one the man page and README show.

The file is a mapping with two keys, `profiles` (name -> settings) and `default` (the name
used without --profile). A profile's settings are those of `PROFILE_HELP`, typed as in
`PROFILE_TYPES`; anything else (an unknown key, a wrong type, a `default` or `--profile`
naming no profile, YAML that does not parse) is a UsageError naming the file and the key.
A missing file holds no profiles. A file holding a password or a token that group or others
can read gets a warning on stderr with the `chmod 600` to run; it is still used.

Credentials travel as pairs: a profile's password belongs to the profile's user, so it is
dropped when the user comes from the environment or the command line; and a token from a
lower layer than the user is dropped, so `--user` given explicitly means Basic auth.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harperctl.errors import UsageError

DEFAULT_URL = "http://127.0.0.1:9925"
DEFAULT_TIMEOUT = 30.0
ENV_NAMES = {
    "url": "HARPERCTL_URL",
    "user": "HARPERCTL_USER",
    "password": "HARPERCTL_PASSWORD",
    "token": "HARPERCTL_TOKEN",
    "ca_file": "HARPERCTL_CA_FILE",
}
DEFAULTS: dict[str, Any] = {"url": DEFAULT_URL, "insecure": False, "timeout": DEFAULT_TIMEOUT}
PROFILE_TYPES: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "user": (str,),
    "password": (str,),
    "token": (str,),
    "ca_file": (str,),
    "insecure": (bool,),
    "timeout": (int, float),
}
PROFILE_HELP: dict[str, str] = {
    "url": f"operations API of the agent, http(s)://host:port [{DEFAULT_URL}]",
    "user": "user for Basic authentication",
    "password": "that user's password (used only with this profile's user; without one "
    "harperctl asks on a terminal)",
    "token": "operation token (JWT), sent as Bearer authentication instead of the user",
    "ca_file": "PEM file of the CA(s) that signed the agent's certificate; ~ expands, a "
    "relative path is taken from the current directory",
    "insecure": "true: do not verify the agent's TLS certificate (warns on stderr) [false]",
    "timeout": f"seconds to wait for an answer [{DEFAULT_TIMEOUT:g}]",
}
SECRETS = ("password", "token")
EXAMPLE = """\
default: local
profiles:
  local:
    url: http://127.0.0.1:9925
    user: admin
    password: secret
  prod:
    url: https://db1.example.com:9925
    token: eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9...
    ca_file: ~/.config/harperctl/prod-ca.pem
    timeout: 10
  lab:
    url: https://10.0.0.5:9925
    user: ops
    insecure: true
"""


class Layer(IntEnum):
    """Where a setting came from; a higher layer wins."""

    DEFAULT = 0
    PROFILE = 1
    ENV = 2
    OPTION = 3


@dataclass(frozen=True)
class Settings:
    """The connection settings one harperctl run uses."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    token: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    profile: str | None = None

    @property
    def verify(self) -> bool | str:
        """Return the TLS verification argument: False, a CA file path, or True."""
        if self.insecure:
            return False
        return self.ca_file or True


@dataclass(frozen=True)
class ProfileFile:
    """The parsed profile file: profiles by name and the default profile's name."""

    path: Path
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    default: str | None = None


def config_path(env: Mapping[str, str]) -> Path:
    """Return the profile file's path under $XDG_CONFIG_HOME (default ~/.config)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "harperctl" / "config.yaml"


def load_profiles(path: Path, warn: Callable[[str], None]) -> ProfileFile:
    """Read and check the profile file; a missing file holds no profiles."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ProfileFile(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from exc
    profiles = _check_file(path, data)
    _warn_if_exposed(path, profiles, warn)
    return ProfileFile(path, profiles, data.get("default"))


def _check_file(path: Path, data: Any) -> dict[str, dict[str, Any]]:
    """Return the profiles of a parsed file, or raise UsageError naming what is wrong."""
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with 'profiles' and 'default'")
    unknown = sorted(set(data) - {"profiles", "default"})
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (expected profiles, default)")
    if not isinstance(data.get("default", ""), str):
        raise UsageError(f"{path}: 'default' must be a profile name")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise UsageError(f"{path}: 'profiles' must map names to settings")
    for name, profile in profiles.items():
        _check_profile(path, str(name), profile)
    return {str(name): dict(profile or {}) for name, profile in profiles.items()}


def _check_profile(path: Path, name: str, profile: Any) -> None:
    """Raise UsageError unless `profile` maps known settings to values of their type."""
    if profile is None:
        return
    if not isinstance(profile, dict):
        raise UsageError(f"{path}: profile {name!r} must be a mapping of settings")
    for key, value in profile.items():
        expected = PROFILE_TYPES.get(key)
        if expected is None:
            known = ", ".join(PROFILE_TYPES)
            raise UsageError(f"{path}: profile {name!r}: unknown setting {key!r} ({known})")
        if not isinstance(value, expected) or (key == "timeout" and isinstance(value, bool)):
            kind = " or ".join(t.__name__ for t in expected)
            raise UsageError(f"{path}: profile {name!r}: {key} must be {kind}, got {value!r}")


def _warn_if_exposed(
    path: Path, profiles: dict[str, dict[str, Any]], warn: Callable[[str], None]
) -> None:
    """Warn when a file holding a password or token is readable by group or others."""
    if not any(key in profile for profile in profiles.values() for key in SECRETS):
        return
    if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        warn(
            f"warning: {path} holds a password or token and is readable by others; "
            f"run: chmod 600 {path}"
        )


def select_profile(file: ProfileFile, name: str | None) -> tuple[str | None, dict[str, Any]]:
    """Return the named profile, else the file's default, else no profile."""
    chosen = name or file.default
    if chosen is None:
        return None, {}
    if chosen not in file.profiles:
        known = ", ".join(sorted(file.profiles)) or "none"
        raise UsageError(f"no profile {chosen!r} in {file.path} (profiles: {known})")
    return chosen, file.profiles[chosen]


def merge(
    options: Mapping[str, Any],
    env: Mapping[str, str],
    profile: Mapping[str, Any],
    profile_name: str | None = None,
) -> Settings:
    """Return the settings taking each from option > env > profile > default."""
    values: dict[str, Any] = {}
    layers: dict[str, Layer] = {}
    for name in PROFILE_TYPES:
        values[name], layers[name] = _first(name, options, env, profile)
    if layers["password"] == Layer.PROFILE and layers["user"] > Layer.PROFILE:
        values["password"] = None
    if values["token"] and layers["user"] > layers["token"]:
        values["token"] = None
    values["timeout"] = float(values["timeout"])
    if values["ca_file"]:
        values["ca_file"] = os.path.expanduser(values["ca_file"])
    settings = Settings(**values, profile=profile_name)
    _check_settings(settings)
    return settings


def _first(
    name: str, options: Mapping[str, Any], env: Mapping[str, str], profile: Mapping[str, Any]
) -> tuple[Any, Layer]:
    """Return a setting's value and the layer it came from."""
    if options.get(name) is not None:
        return options[name], Layer.OPTION
    env_name = ENV_NAMES.get(name)
    if env_name and env.get(env_name):
        return env[env_name], Layer.ENV
    if profile.get(name) is not None:
        return profile[name], Layer.PROFILE
    return DEFAULTS.get(name), Layer.DEFAULT


def _check_settings(settings: Settings) -> None:
    """Raise UsageError for a URL, timeout or CA file that cannot work."""
    parts = urlsplit(settings.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"invalid URL {settings.url!r}: expected http(s)://host:port")
    if settings.timeout <= 0:
        raise UsageError(f"timeout must be more than 0 seconds, got {settings.timeout:g}")
    if settings.ca_file and not os.path.isfile(settings.ca_file):
        raise UsageError(f"CA file {settings.ca_file!r} does not exist")


def resolve(
    options: Mapping[str, Any], env: Mapping[str, str], warn: Callable[[str], None]
) -> Settings:
    """Return the settings for this run, reading the profile file named by `env`."""
    path = config_path(env)
    wanted = options.get("profile")
    if wanted is None and not path.exists():
        return merge(options, env, {})
    name, profile = select_profile(load_profiles(path, warn), wanted)
    return merge(options, env, profile, name)
