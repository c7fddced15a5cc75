"""Search conditions: the tree that search_by_value, search_by_conditions and SQL WHERE share.

Pure data plus `parse_conditions` (the search_by_conditions request shape) and `matches`
(a reference evaluator the tests hold the SQLite compiler against). `agent.storage.query`
compiles the same tree to SQL. A `Grouping` describes an aggregate query (SQL GROUP BY):
its HAVING is the same tree, whose leaves may also be `Measure`s, tests of an aggregate.

Every value a condition holds can reach SQLite: integers must fit in 64 bits and floats must
be finite, or the comparison is refused with a `ClientError` naming the attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

from agent.errors import ClientError
from agent.jsonx import INT64_MAX, INT64_MIN  # what SQLite's INTEGER holds

# search_by_conditions comparators (HarperDB's names) plus what SQL WHERE adds.
COMPARATORS = (
    "equals",
    "not_equal",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "between",
    "contains",
    "starts_with",
    "ends_with",
    "in",
    "like",
    "is_null",
    "is_not_null",
)
ALIASES = {
    "=": "equals",
    "==": "equals",
    "eq": "equals",
    "!=": "not_equal",
    "<>": "not_equal",
    "ne": "not_equal",
    ">": "greater_than",
    "gt": "greater_than",
    ">=": "greater_than_equal",
    "ge": "greater_than_equal",
    "gte": "greater_than_equal",
    "<": "less_than",
    "lt": "less_than",
    "<=": "less_than_equal",
    "le": "less_than_equal",
    "lte": "less_than_equal",
}


@dataclass(frozen=True)
class Compare:
    """One test of one attribute: `value` is a pair for between, a tuple for in."""

    attribute: str
    comparator: str
    value: Any = None


@dataclass(frozen=True)
class Group:
    """Conditions joined by "and" or "or"."""

    operator: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = Union[Compare, Group, Not]

AGGREGATES = ("COUNT", "SUM", "AVG", "MIN", "MAX")


@dataclass(frozen=True)
class Aggregate:
    """COUNT, SUM, AVG, MIN or MAX over a group's records; COUNT(*) has no attribute."""

    function: str
    attribute: str | None = None

    @property
    def label(self) -> str:
        """Return the name HarperDB gives its result column: `COUNT(*)`, `MAX(age)`."""
        return f"{self.function}({self.attribute or '*'})"


@dataclass(frozen=True)
class Measure:
    """A HAVING test of an aggregate's value; comparator and value as in Compare."""

    aggregate: Aggregate
    comparator: str
    value: Any = None


# A grouped query's output, sort or HAVING subject: a grouped attribute or an aggregate.
Term = Union[str, Aggregate]


@dataclass(frozen=True)
class Grouping:
    """An aggregate query: group by `keys` (none: one group), return `outputs` per group.

    `having` filters groups: its Compare leaves test grouped attributes, its Measure leaves
    aggregates. `order` sorts groups by (term, descending) before the keys themselves.
    """

    keys: tuple[str, ...]
    outputs: tuple[Term, ...]
    having: Condition | Measure | None = None
    order: tuple[tuple[Term, bool], ...] = ()
    distinct: bool = False


def in_int64(value: Any) -> bool:
    """Tell whether a number can reach SQLite as it is: a 64-bit integer or a finite float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return math.isfinite(value)


def check_number(value: Any, what: str) -> None:
    """Refuse an integer outside 64 bits or a non-finite float, naming `what` it is."""
    if in_int64(value):
        return
    if isinstance(value, float):
        raise ClientError(f"{what} must be a finite number, got {value!r}")
    raise ClientError(
        f"{what} must fit in a 64-bit integer ({INT64_MIN} to {INT64_MAX}), got {str(value)[:40]}"
    )


def comparator_name(raw: object) -> str:
    """Return the canonical comparator for a request's `comparator`/`search_type`."""
    if not isinstance(raw, str):
        raise ClientError(f"comparator must be a string, got {raw!r}")
    name = ALIASES.get(raw.lower(), raw.lower())
    if name not in COMPARATORS:
        raise ClientError(f'Unknown query comparator "{raw}"')
    return name


def compare(attribute: object, comparator: object, value: Any) -> Compare:
    """Build and validate one comparison."""
    if not isinstance(attribute, str) or not attribute:
        raise ClientError(f"condition attribute must be a non-empty string, got {attribute!r}")
    name = comparator_name(comparator)
    if name == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ClientError(
                f"between on '{attribute}' needs a value of two items [low, high], got {value!r}"
            )
        value = (value[0], value[1])
    elif name == "in":
        if not isinstance(value, (list, tuple)):
            raise ClientError(f"in on '{attribute}' needs a list value, got {value!r}")
        value = tuple(value)
    elif name in ("contains", "starts_with", "ends_with", "like") and not isinstance(
        value, (str, int, float)
    ):
        raise ClientError(f"{name} on '{attribute}' needs a string value, got {value!r}")
    for item in value if isinstance(value, tuple) else (value,):
        check_number(item, f"the value of the {name} condition on '{attribute}'")
    return Compare(attribute, name, value)


def measure(aggregate: Aggregate, comparator: object, value: Any) -> Measure:
    """Build and validate a HAVING test of an aggregate, as `compare` does for attributes."""
    if aggregate.function not in AGGREGATES:
        raise ClientError(f"unknown aggregate function {aggregate.function}()")
    test = compare(aggregate.label, comparator, value)
    return Measure(aggregate, test.comparator, test.value)


def parse_conditions(conditions: object, operator: object = "and", depth: int = 0) -> Condition:
    """Parse search_by_conditions' `conditions` list (with nested groups) into a tree."""
    if depth > 32:
        raise ClientError("conditions are nested too deeply (32 levels at most)")
    op = _operator(operator)
    if not isinstance(conditions, list) or not conditions:
        raise ClientError("'conditions' must be a non-empty array")
    parsed = []
    for item in conditions:
        if not isinstance(item, dict):
            raise ClientError(f"each condition must be an object, got {item!r}")
        if "conditions" in item:
            parsed.append(
                parse_conditions(item["conditions"], item.get("operator", "and"), depth + 1)
            )
            continue
        attribute = item.get("attribute", item.get("search_attribute"))
        comparator = item.get("comparator", item.get("search_type"))
        if comparator is None:
            raise ClientError(f"condition on {attribute!r} is missing 'comparator'")
        value = item.get("value", item.get("search_value"))
        parsed.append(compare(attribute, comparator, value))
    return parsed[0] if len(parsed) == 1 else Group(op, tuple(parsed))


def _operator(raw: object) -> str:
    if not isinstance(raw, str) or raw.lower() not in ("and", "or"):
        raise ClientError(f"operator must be 'and' or 'or', got {raw!r}")
    return raw.lower()


def attributes_of(condition: Condition | Measure | None) -> set[str]:
    """Return every attribute a condition tree mentions."""
    if condition is None:
        return set()
    if isinstance(condition, Compare):
        return {condition.attribute}
    if isinstance(condition, Measure):
        attribute = condition.aggregate.attribute
        return set() if attribute is None else {attribute}
    if isinstance(condition, Not):
        return attributes_of(condition.condition)
    found: set[str] = set()
    for child in condition.conditions:
        found |= attributes_of(child)
    return found


def matches(condition: Condition | None, record: dict) -> bool:
    """Evaluate a condition against one record, as the SQL compiler must."""
    if condition is None:
        return True
    if isinstance(condition, Not):
        return not matches(condition.condition, record)
    if isinstance(condition, Group):
        results = (matches(c, record) for c in condition.conditions)
        return all(results) if condition.operator == "and" else any(results)
    return _compare(condition, record.get(condition.attribute))


def _comparable(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numeric) and isinstance(b, numeric)) or type(a) is type(b)


def _compare(c: Compare, actual: Any) -> bool:
    name, value = c.comparator, c.value
    if name == "is_null":
        return actual is None
    if name == "is_not_null":
        return actual is not None
    if actual is None:
        return False
    if name == "equals":
        return _comparable(actual, value) and actual == value
    if name == "not_equal":
        return not (_comparable(actual, value) and actual == value)
    if name == "in":
        return any(_comparable(actual, v) and actual == v for v in value)
    if name in ("contains", "starts_with", "ends_with", "like"):
        return _text_match(name, actual, value)
    if name == "between":
        lo, hi = value
        return _ordered(actual, lo, "ge") and _ordered(actual, hi, "le")
    return _ordered(
        actual,
        value,
        {
            "greater_than": "gt",
            "greater_than_equal": "ge",
            "less_than": "lt",
            "less_than_equal": "le",
        }[name],
    )


def _ordered(actual: Any, value: Any, how: str) -> bool:
    if not _comparable(actual, value) or isinstance(actual, (dict, list)):
        return False
    if how == "gt":
        return actual > value
    if how == "ge":
        return actual >= value
    if how == "lt":
        return actual < value
    return actual <= value


def _text_match(name: str, actual: Any, value: Any) -> bool:
    if not isinstance(actual, str):
        return False
    needle = str(value)
    if name == "contains":
        return needle in actual
    if name == "starts_with":
        return actual.startswith(needle)
    if name == "ends_with":
        return actual.endswith(needle)
    return _like(actual, needle)


def _like(text: str, pattern: str) -> bool:
    import re

    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None
