"""The man pages: current with the code, and holding what a man page owes its reader.

`make man` (tools/make_man.py) writes man/harperctl.1 and man/harper-agent.8 from the click
commands, harperctl.errors, harperctl.profiles and agent.settings; these tests generate them
afresh and read them.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from agent.settings import SETTINGS
from harperctl import errors, profiles

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("harperctl.1", "harper-agent.8")
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS")
SECTIONS += ("ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO")


@pytest.fixture(scope="module")
def make_man() -> Any:
    """Load tools/make_man.py as a module."""
    pytest.importorskip("click_man")
    spec = importlib.util.spec_from_file_location("make_man", ROOT / "tools" / "make_man.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(make_man: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Generate both pages afresh and return their text by file name."""
    out = tmp_path_factory.mktemp("man")
    make_man.main(out)
    return {name: (out / name).read_text() for name in PAGES}


def section(page: str, title: str) -> str:
    """Return the text of the top-level section `title` (up to the next .SH)."""
    found = re.search(rf'^\.SH "?{title}"?\n(.*?)(?=^\.SH |\Z)', page, re.M | re.S)
    assert found, f"no section {title}"
    return found.group(1)


@pytest.mark.parametrize("name", PAGES)
def test_man_pages_are_current(pages: dict[str, str], name: str) -> None:
    current = pages[name] == (ROOT / "man" / name).read_text()
    assert current, f"man/{name} is stale: run `make man`"


@pytest.mark.parametrize("name", PAGES)
def test_every_section_is_there_in_order(pages: dict[str, str], name: str) -> None:
    titles = [ln[4:].strip('"') for ln in pages[name].splitlines() if ln.startswith(".SH ")]
    ours = [title for title in titles if title in SECTIONS]
    assert ours == list(SECTIONS)


@pytest.mark.parametrize("name", PAGES)
def test_roff_is_clean(pages: dict[str, str], name: str, tmp_path: Path) -> None:
    page = pages[name]
    assert not re.search(r"[\x00-\x08\x0b-\x1f]", page), "a control character (click's \\b?)"
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    path = tmp_path / name
    path.write_text(page)
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""


def test_name_lines_hold_the_whole_first_sentence(pages: dict[str, str]) -> None:
    assert section(pages["harperctl.1"], "NAME").strip() == (
        r"harperctl \- Drive harper\-agent nodes through their operations API."
    )
    assert section(pages["harper-agent.8"], "NAME").strip() == (
        r"harper\-agent \- Run a replicated database node in the style of HarperDB."
    )


def test_first_sentence_is_not_cut(make_man: Any) -> None:
    command = click.Command("x", help="Do this, e.g. that (x.y). Then more.\n\nOther text.")
    assert make_man.first_sentence(command) == "Do this, e.g. that (x.y)."
    long = "Change how this node replicates with the node HOST_OR_URL, already added."
    assert make_man.first_sentence(click.Command("y", help=long)) == long


def test_every_command_is_listed_with_its_sentence_and_examples(
    make_man: Any, pages: dict[str, str]
) -> None:
    from agent.cli import cli as agent_cli
    from harperctl.cli import cli as ctl_cli

    for name, cli in (("harperctl.1", ctl_cli), ("harper-agent.8", agent_cli)):
        page = pages[name]
        tool = name.rpartition(".")[0]
        for ctx in list(make_man.walk(click.Context(cli, info_name=tool)))[1:]:
            text = section(page, re.escape(make_man.escape(ctx.command_path.upper())))
            assert make_man.escape(make_man.first_sentence(ctx.command)) in page
            examples = make_man.examples_of(ctx.command)
            assert examples, f"{ctx.command_path} has no examples"
            for example in examples:
                assert make_man.escape(example) in text, (ctx.command_path, example)


def test_harperctl_exit_status_and_environment(make_man: Any, pages: dict[str, str]) -> None:
    page = pages["harperctl.1"]
    status = section(page, "EXIT STATUS")
    for code, meaning in errors.EXIT_STATUS:
        assert f"\\fB{code}\\fP\n{make_man.escape(meaning)}" in status
    environment = section(page, "ENVIRONMENT")
    for env_name in [*profiles.ENV_NAMES.values(), "XDG_CONFIG_HOME", "_HARPERCTL_COMPLETE"]:
        assert f"\\fB{make_man.escape(env_name)}\\fP" in environment


def test_harperctl_files_document_the_profile_file(make_man: Any, pages: dict[str, str]) -> None:
    files = section(pages["harperctl.1"], "FILES")
    assert "$XDG_CONFIG_HOME/harperctl/config.yaml" in files and "chmod 600" in files
    assert set(profiles.PROFILE_HELP) == set(profiles.PROFILE_TYPES)
    for key in profiles.PROFILE_TYPES:
        assert f".TP\n\\fB{make_man.escape(key)}\\fP\n" in files
    for line in profiles.EXAMPLE.splitlines():
        assert make_man.escape(line) in files


def test_the_documented_profile_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(profiles.EXAMPLE)
    path.chmod(0o600)
    warnings: list[str] = []
    loaded = profiles.load_profiles(path, warnings.append)
    assert warnings == [] and loaded.default == "local"
    assert set(loaded.profiles) == set(yaml.safe_load(profiles.EXAMPLE)["profiles"])
    for name in loaded.profiles:
        assert profiles.select_profile(loaded, name)[0] == name
    settings = profiles.merge({}, {}, loaded.profiles["local"], "local")
    assert (settings.url, settings.user, settings.password) == (
        "http://127.0.0.1:9925",
        "admin",
        "secret",
    )


def test_harper_agent_exit_status_environment_and_files(
    make_man: Any, pages: dict[str, str]
) -> None:
    page = pages["harper-agent.8"]
    codes = re.findall(r"^\.TP\n\\fB(\d+)\\fP$", section(page, "EXIT STATUS"), re.M)
    assert codes == ["0", "1", "2"]
    environment = section(page, "ENVIRONMENT")
    for setting in SETTINGS:
        assert f".TP\n\\fB{make_man.escape(setting.env)}\\fP\n" in environment
        assert make_man.escape(setting.help) in environment
    assert "HDB_ADMIN_PASSWORD" in environment
    files = section(page, "FILES")
    for name in ("harperdb\\-config.yaml", "schema.graphql", "keys/", "log/hdb.log"):
        assert f"<root>/{name}" in files


def test_the_readme_documents_the_profile_file() -> None:
    readme = (ROOT / "README.md").read_text()
    assert profiles.EXAMPLE in readme, "README's profile example differs from profiles.EXAMPLE"
    for key in profiles.PROFILE_TYPES:
        assert f"| `{key}` |" in readme, f"README's profile table lacks {key}"
