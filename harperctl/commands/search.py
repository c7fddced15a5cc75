"""`harperctl search`: search_by_value, or search_by_conditions with --where."""

from __future__ import annotations

from typing import Any

import click

from harperctl.commands._context import AppContext, pass_app, warn
from harperctl.commands._options import TableRef, attributes_option, examples, table_argument
from harperctl.conditions import OPERATOR_HELP, parse_sort, parse_value, parse_where
from harperctl.errors import HarperctlError, UsageError

HELP = f"""Search a table by value or by --where conditions.

\b
With ATTRIBUTE VALUE: search_by_value; VALUE may hold * wildcards (name 'Jo*').
With --where (repeatable): search_by_conditions, all must hold (any with --or).

\b
A condition is ATTR OP VALUE with OP one of
  {OPERATOR_HELP}
or ATTR=COMPARATOR:VALUE naming a comparator (name=starts_with:Jo),
or ATTR between LO,HI (inclusive).
VALUE is JSON when it parses (30, true, null, "30"), else text; a VALUE
that starts with one of = ! < > ~ ^ $ must be quoted JSON (name='"=x"'):
'==', '=>', '<>' and the like are refused (exit 2), never guessed.

\b
A name in ATTRIBUTE, --where, --sort or --attributes that the table does
not have is named in a warning on stderr (one describe_table call first).
Records print as they arrive.
"""


def value_body(ref: TableRef, attribute: str, value: str, attributes: list[str]) -> dict[str, Any]:
    """Return the search_by_value operation."""
    return {
        "operation": "search_by_value",
        **ref.body(),
        "attribute": attribute,
        "value": parse_value(value),
        "get_attributes": attributes,
    }


def conditions_body(
    ref: TableRef,
    wheres: tuple[str, ...],
    use_or: bool,
    paging: dict[str, Any],
    attributes: list[str],
) -> dict[str, Any]:
    """Return the search_by_conditions operation; `paging` holds sort, limit, offset."""
    body: dict[str, Any] = {
        "operation": "search_by_conditions",
        **ref.body(),
        "operator": "or" if use_or else "and",
        "conditions": [parse_where(where) for where in wheres],
        "get_attributes": attributes,
    }
    if paging.get("sort"):
        body["sort"] = parse_sort(paging["sort"])
    body.update({k: paging[k] for k in ("limit", "offset") if paging.get(k) is not None})
    return body


def named_attributes(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (attribute, where it was named) for each attribute a search body names."""
    named = []
    if "attribute" in body:
        named.append((body["attribute"], "ATTRIBUTE"))
    named += [(condition["attribute"], "--where") for condition in body.get("conditions", [])]
    if "sort" in body:
        named.append((body["sort"]["attribute"], "--sort"))
    named += [(name, "--attributes") for name in body["get_attributes"] if name != "*"]
    return named


def warn_unknown_attributes(app: AppContext, ref: TableRef, body: dict[str, Any]) -> None:
    """Warn on stderr about each name the table does not have; skipped if describe fails."""
    named = named_attributes(body)
    if not named:
        return
    try:
        description = app.call({"operation": "describe_table", **ref.body()})
    except HarperctlError:
        return
    attributes = description.get("attributes") if isinstance(description, dict) else None
    known = {item.get("attribute") for item in attributes or [] if isinstance(item, dict)}
    if not known:
        return
    listed = ", ".join(sorted(str(name) for name in known))
    for name, option in dict.fromkeys(named):
        if name not in known:
            warn(
                f"harperctl: warning: {ref} has no attribute {name!r} ({option}); "
                f"its attributes: {listed}"
            )


def _check_form(
    attribute: str | None, value: str | None, wheres: tuple[str, ...], paging: dict[str, Any]
) -> None:
    """Raise UsageError unless exactly one search form is used, with fitting options."""
    if attribute is not None and wheres:
        raise UsageError("search: give ATTRIBUTE VALUE or --where, not both")
    if attribute is None and not wheres:
        raise UsageError("search: give ATTRIBUTE VALUE, or one or more --where conditions")
    if attribute is not None and value is None:
        raise UsageError(f"search: missing the VALUE to look for in {attribute!r}")
    if attribute is not None and any(v is not None and v is not False for v in paging.values()):
        raise UsageError("search: --or, --sort, --limit and --offset need --where")


@click.command(
    help=HELP,
    epilog=examples(
        "harperctl search dev.dog name 'Pen*'",
        "harperctl search dev.dog --where 'age>=3' --where 'name=starts_with:P' --sort age:desc",
        "harperctl search dev.dog --where 'age between 2,5' --or --where 'breed~terrier'",
        "harperctl search dev.dog --where 'age>3' -o jsonl | jq .name",
    ),
)
@table_argument
@click.argument("attribute", required=False)
@click.argument("value", required=False)
@click.option("--where", "wheres", multiple=True, metavar="CONDITION", help="A condition.")
@click.option("--or", "use_or", is_flag=True, help="Match any condition, not all.")
@click.option("--sort", metavar="ATTR[:desc]", help="Sort by ATTR, ascending or :desc.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="Return at most N records.")
@click.option("--offset", type=click.IntRange(min=0), metavar="N", help="Skip the first N records.")
@attributes_option
@pass_app
def search(
    app: AppContext,
    ref: TableRef,
    attribute: str | None,
    value: str | None,
    wheres: tuple[str, ...],
    attributes: list[str],
    **paging: Any,
) -> None:
    """Search DB.TABLE; the help text is HELP."""
    _check_form(attribute, value, wheres, paging)
    if attribute is not None and value is not None:
        body = value_body(ref, attribute, value, attributes)
    else:
        body = conditions_body(ref, wheres, paging["use_or"], paging, attributes)
    warn_unknown_attributes(app, ref, body)
    app.emit_records(body)


COMMANDS = [search]
