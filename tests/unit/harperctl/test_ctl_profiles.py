"""Settings precedence (option > env > profile > default) and the profile file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harperctl import profiles
from harperctl.errors import UsageError
from harperctl.profiles import Settings, config_path, merge, resolve

PROFILE_FILE = """\
default: local
profiles:
  local: {url: "http://127.0.0.2:9925", user: pat, password: from-profile, timeout: 5}
  prod: {url: "https://db.example.com:9925", token: prof-token, insecure: true}
"""


def collect() -> tuple[list[str], Any]:
    warnings: list[str] = []
    return warnings, warnings.append


def test_defaults_without_anything() -> None:
    settings = merge({}, {}, {})
    assert settings == Settings(url="http://127.0.0.1:9925", timeout=30.0)
    assert settings.verify is True


@pytest.mark.parametrize(
    ("options", "env", "profile", "expected"),
    [
        (
            {"url": "http://opt:1"},
            {"HARPERCTL_URL": "http://env:1"},
            {"url": "http://p:1"},
            "http://opt:1",
        ),
        ({}, {"HARPERCTL_URL": "http://env:1"}, {"url": "http://p:1"}, "http://env:1"),
        ({}, {}, {"url": "http://p:1"}, "http://p:1"),
        ({}, {"HARPERCTL_URL": ""}, {"url": "http://p:1"}, "http://p:1"),
        ({}, {}, {}, "http://127.0.0.1:9925"),
    ],
)
def test_url_precedence(options: dict, env: dict, profile: dict, expected: str) -> None:
    assert merge(options, env, profile).url == expected


@pytest.mark.parametrize("name", ["user", "token"])
def test_user_and_token_precedence(name: str) -> None:
    env_name = profiles.ENV_NAMES[name]
    assert merge({name: "o"}, {env_name: "e"}, {name: "p"}).__dict__[name] == "o"
    assert merge({}, {env_name: "e"}, {name: "p"}).__dict__[name] == "e"
    assert merge({}, {}, {name: "p"}).__dict__[name] == "p"


def test_password_precedence_with_the_user_from_the_same_layer() -> None:
    profile = {"user": "pat", "password": "p"}
    env = {"HARPERCTL_PASSWORD": "e"}
    assert merge({"password": "o"}, env, profile).password == "o"
    assert merge({}, env, profile).password == "e"
    assert merge({}, {}, profile).password == "p"


def test_timeout_ca_and_insecure_come_from_options_then_profile(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    profile = {"timeout": 5, "insecure": True, "ca_file": str(ca)}
    assert merge({}, {}, profile).timeout == 5.0
    assert merge({"timeout": 2.5}, {}, profile).timeout == 2.5
    assert merge({}, {}, profile).verify is False
    assert merge({}, {}, {"ca_file": str(ca)}).verify == str(ca)
    assert merge({"insecure": True}, {}, {"ca_file": str(ca)}).verify is False


def test_a_profile_password_is_not_paired_with_another_user() -> None:
    profile = {"user": "pat", "password": "pats-secret"}
    assert merge({"user": "ann"}, {}, profile).password is None
    assert merge({}, {"HARPERCTL_USER": "ann"}, profile).password is None


def test_an_explicit_user_drops_a_lower_token() -> None:
    settings = merge({"user": "ann", "password": "x"}, {}, {"token": "prof-token"})
    assert (settings.user, settings.token) == ("ann", None)
    env_token = merge({}, {"HARPERCTL_TOKEN": "env-token"}, {"user": "pat", "password": "p"})
    assert env_token.token == "env-token"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "127.0.0.1:9925"}, "invalid URL"),
        ({"url": "ftp://host"}, "invalid URL"),
        ({"timeout": 0}, "timeout must be more than 0"),
        ({"ca_file": "/no/such/ca.pem"}, "CA file '/no/such/ca.pem' does not exist"),
    ],
)
def test_settings_that_cannot_work_are_usage_errors(options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        merge(options, {}, {})


def test_config_path_follows_xdg_config_home(tmp_path: Path) -> None:
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "harperctl/config.yaml"
    assert config_path({}) == Path.home() / ".config/harperctl/config.yaml"


def test_resolve_uses_the_default_profile(write_profiles: Any, isolated: Path) -> None:
    write_profiles(PROFILE_FILE)
    warnings, warn = collect()
    settings = resolve({}, {"XDG_CONFIG_HOME": str(isolated)}, warn)
    assert (settings.url, settings.user, settings.password) == (
        "http://127.0.0.2:9925",
        "pat",
        "from-profile",
    )
    assert (settings.timeout, settings.profile, warnings) == (5.0, "local", [])


def test_resolve_uses_the_named_profile(write_profiles: Any, isolated: Path) -> None:
    write_profiles(PROFILE_FILE)
    settings = resolve({"profile": "prod"}, {"XDG_CONFIG_HOME": str(isolated)}, collect()[1])
    assert (settings.url, settings.token, settings.verify) == (
        "https://db.example.com:9925",
        "prof-token",
        False,
    )


def test_env_beats_the_profile(write_profiles: Any, isolated: Path) -> None:
    write_profiles(PROFILE_FILE)
    env = {"XDG_CONFIG_HOME": str(isolated), "HARPERCTL_URL": "http://env:9925"}
    assert resolve({}, env, collect()[1]).url == "http://env:9925"


def test_without_a_file_resolve_uses_defaults(isolated: Path) -> None:
    settings = resolve({}, {"XDG_CONFIG_HOME": str(isolated)}, collect()[1])
    assert settings == Settings()


@pytest.mark.parametrize(
    ("text", "wanted"),
    [(PROFILE_FILE, "staging"), ("default: gone\nprofiles: {a: {}}\n", None), ("", "x")],
)
def test_a_missing_profile_is_a_usage_error(
    write_profiles: Any, isolated: Path, text: str, wanted: str | None
) -> None:
    write_profiles(text)
    with pytest.raises(UsageError, match="no profile") as caught:
        resolve({"profile": wanted}, {"XDG_CONFIG_HOME": str(isolated)}, collect()[1])
    assert caught.value.exit_code == 2


def test_a_named_profile_without_a_file_is_a_usage_error(isolated: Path) -> None:
    with pytest.raises(UsageError, match="no profile 'prod'.*profiles: none"):
        resolve({"profile": "prod"}, {"XDG_CONFIG_HOME": str(isolated)}, collect()[1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles: [a, b\n", "not valid YAML"),
        ("- a\n", "expected a mapping"),
        ("profile: {}\n", "unknown key 'profile'"),
        ("profiles: {a: {passwd: x}}\n", "profile 'a': unknown setting 'passwd'"),
        ("profiles: {a: {timeout: soon}}\n", "timeout must be int or float"),
        ("profiles: {a: {insecure: 'yes'}}\n", "insecure must be bool"),
        ("profiles: {a: [url]}\n", "must be a mapping"),
    ],
)
def test_a_bad_file_is_a_usage_error_naming_the_problem(
    write_profiles: Any, text: str, message: str
) -> None:
    path = write_profiles(text)
    with pytest.raises(UsageError, match=message):
        profiles.load_profiles(path, collect()[1])


def test_warn_when_a_readable_file_holds_a_password(write_profiles: Any) -> None:
    path = write_profiles(PROFILE_FILE, mode=0o644)
    warnings, warn = collect()
    profiles.load_profiles(path, warn)
    assert len(warnings) == 1
    assert "readable by others" in warnings[0] and "chmod 600" in warnings[0]


@pytest.mark.parametrize(
    ("text", "mode"),
    [(PROFILE_FILE, 0o600), ("profiles: {a: {url: 'http://x:1', user: u}}\n", 0o644)],
)
def test_no_warning_when_private_or_without_secrets(
    write_profiles: Any, text: str, mode: int
) -> None:
    warnings, warn = collect()
    profiles.load_profiles(write_profiles(text, mode=mode), warn)
    assert warnings == []
