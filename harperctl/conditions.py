"""Parse `search --where` conditions and `--sort` into search_by_conditions parts.

The mini-syntax, one condition per --where:

    ATTR OP VALUE        OP is one of  =  !=  >  >=  <  <=  ~ (contains)
                                       ^ (starts_with)  $ (ends_with)
    ATTR=COMPARATOR:VALUE   any HarperDB comparator by name, e.g. name=starts_with:Jo
    ATTR between LO,HI   inclusive; also ATTR=between:LO,HI or ATTR=between:[LO,HI]

A VALUE is JSON when it parses as JSON (30, 2.5, true, false, null, "quoted text"), else
the text itself, stripped: so age>=30 compares with the number 30 and name="30" with text.
What does not parse is a UsageError naming the condition and the operators, never a guess:
an empty VALUE, and a VALUE that starts with an operator character (= ! < > ~ ^ $), which
is how `name==Penny`, `age=>3`, `age=<3`, `age<>3` and `a!==1` would otherwise be read
(as equals "=Penny", ...). Such a value is written as JSON: name="=x".
"""

from __future__ import annotations

import json
import re
from typing import Any

from harperctl.errors import UsageError

OPERATORS = {
    "=": "equals",
    "!=": "not_equal",
    ">": "greater_than",
    ">=": "greater_than_equal",
    "<": "less_than",
    "<=": "less_than_equal",
    "~": "contains",
    "^": "starts_with",
    "$": "ends_with",
}
COMPARATORS = frozenset(OPERATORS.values()) | {"between"}
OPERATOR_HELP = "=  !=  >  >=  <  <=   ~ (contains)  ^ (starts_with)  $ (ends_with)"
ACCEPTED = (
    "operators: = != > >= < <= ~ (contains) ^ (starts_with) $ (ends_with); "
    "or ATTR=COMPARATOR:VALUE, or ATTR between LO,HI"
)
_OPERATOR_CHARS = "=!<>~^$"

_ATTRIBUTE = r"(?P<attribute>[^\s=!<>~^$]+)"
_BETWEEN = re.compile(rf"^\s*{_ATTRIBUTE}\s+between\s+(?P<value>.+?)\s*$", re.IGNORECASE)
_COMPARE = re.compile(rf"^\s*{_ATTRIBUTE}\s*(?P<op>>=|<=|!=|=|>|<|~|\^|\$)(?P<value>.*)$")
_NAMED = re.compile(r"^(?P<comparator>[a-z_]+):(?P<value>.*)$", re.DOTALL)


def parse_value(text: str) -> Any:
    """Return `text` as JSON when it is JSON (NaN and Infinity excluded), else as text."""
    stripped = text.strip()
    try:
        return json.loads(stripped, parse_constant=_refuse)
    except ValueError:
        return stripped


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a value")


def parse_where(text: str) -> dict[str, Any]:
    """Return the {attribute, comparator, value} condition one --where describes."""
    found = _BETWEEN.match(text)
    if found:
        return _condition(found["attribute"], "between", found["value"])
    found = _COMPARE.match(text)
    if not found:
        raise UsageError(f"--where {text!r}: expected ATTR OP VALUE, e.g. 'age>=30'; {ACCEPTED}")
    _refuse_odd_value(text, found["op"], found["value"].strip())
    comparator, value = OPERATORS[found["op"]], found["value"].strip()
    named = _NAMED.match(value) if found["op"] == "=" else None
    if named and named["comparator"] in COMPARATORS:
        comparator, value = named["comparator"], named["value"]
    return _condition(found["attribute"], comparator, value)


def _refuse_odd_value(text: str, op: str, value: str) -> None:
    """Refuse an empty VALUE, and one that starts with an operator character ('==' etc.)."""
    if not value:
        raise UsageError(
            f'--where {text!r}: no VALUE after {op!r} (an empty string is written ""); {ACCEPTED}'
        )
    stuck = len(value) - len(value.lstrip(_OPERATOR_CHARS))
    if stuck:
        raise UsageError(
            f"--where {text!r}: {op + value[:stuck]!r} is not an operator; {ACCEPTED} "
            f'(a VALUE starting with one of {_OPERATOR_CHARS} is written as JSON: "{value}")'
        )


def _condition(attribute: str, comparator: str, raw: str) -> dict[str, Any]:
    """Build one condition, parsing the value as `comparator` needs."""
    value = _range(attribute, raw) if comparator == "between" else parse_value(raw)
    return {"attribute": attribute, "comparator": comparator, "value": value}


def _range(attribute: str, raw: str) -> list[Any]:
    """Return [lo, hi] from 'lo,hi' or a JSON array of two values."""
    whole = parse_value(raw)
    if isinstance(whole, list) and len(whole) == 2:
        return whole
    parts = raw.split(",")
    if len(parts) != 2:
        raise UsageError(f"--where {attribute} between: expected LO,HI, got {raw.strip()!r}")
    return [parse_value(part) for part in parts]


def parse_sort(text: str) -> dict[str, Any]:
    """Return the sort object for 'ATTR', 'ATTR:asc' or 'ATTR:desc'."""
    attribute, _, direction = text.rpartition(":")
    if not attribute or direction.lower() not in ("asc", "desc"):
        attribute, direction = text, "asc"
    if not attribute.strip():
        raise UsageError("--sort needs an attribute name, e.g. --sort age:desc")
    return {"attribute": attribute.strip(), "descending": direction.lower() == "desc"}


def parse_attribute_list(text: str) -> list[str]:
    """Return the names in a comma-separated list such as 'id,name'."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--attributes needs at least one name, e.g. --attributes id,name")
    return names
