"""Searches compiled to SQLite, held to the reference evaluator in agent.storage.conditions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import jsonx
from agent.errors import ClientError
from agent.storage import query
from agent.storage.conditions import Compare, Group, Not, compare, matches
from agent.storage.query import Sort
from agent.storage.writes import WriteOp

# --- the compiler agrees with the evaluator -------------------------------------------------

# SQLite's JSON functions end a string at U+0000, so the one character left out is NUL.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
# Mostly short strings over a few letters, so values and needles overlap often.
SHORT = st.text("aAbé%_ ", max_size=3)
STRINGS = st.one_of(SHORT, st.sampled_from(["ab", "Ab", "É", "b a"]), TEXT)
INTS = st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))
FLOATS = st.one_of(
    st.sampled_from([-1.5, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5]),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(STRINGS, INTS, FLOATS, st.booleans())
VALUES = st.one_of(SCALARS, st.none(), st.lists(SCALARS, max_size=2))
ATTRIBUTES = ["a", "b", "c"]
RECORDS = st.lists(
    st.fixed_dictionaries({}, optional={name: VALUES for name in ATTRIBUTES}), max_size=12
)

ORDERED = ["greater_than", "greater_than_equal", "less_than", "less_than_equal"]
TEXTUAL = ["contains", "starts_with", "ends_with", "like"]
NEEDLES = st.one_of(SHORT, st.sampled_from(["a%", "%b", "_b%", "%é%"]), STRINGS, INTS, FLOATS)


@st.composite
def comparisons(draw):
    attribute = draw(st.sampled_from([*ATTRIBUTES, "id", "absent"]))
    name = draw(
        st.sampled_from(["equals", "not_equal", "in", "between", "is_null", "is_not_null"])
        | st.sampled_from(ORDERED + TEXTUAL)
    )
    if name in ("equals", "not_equal"):
        value = draw(st.one_of(SCALARS, st.none()))
    elif name == "in":
        value = draw(st.lists(st.one_of(SCALARS, st.none()), max_size=3))
    elif name == "between":
        value = [draw(SCALARS), draw(SCALARS)]
    elif name in ORDERED:
        value = draw(SCALARS)
    elif name in TEXTUAL:
        value = draw(NEEDLES)
    else:
        value = None
    return compare(attribute, name, value)


CONDITIONS = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(
            Group,
            st.sampled_from(["and", "or"]),
            st.lists(inner, min_size=1, max_size=3).map(tuple),
        ),
    ),
    max_leaves=6,
)


def load(kit, db, records: list[dict], deleted: set[int]) -> str:
    """Store records under keys 0..n-1 in a fresh table and delete some; return its name."""
    table = kit.table(db).name
    stored = [{**record, "id": key} for key, record in enumerate(records)]
    ops = [WriteOp("insert", table, records=stored)] if stored else []
    ops.append(WriteOp("delete", table, ids=sorted(deleted)))
    kit.txn(db, *ops)
    return table


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(RECORDS, st.lists(CONDITIONS, min_size=1, max_size=4), st.data())
def test_sql_search_selects_what_the_evaluator_selects(module_kit, records, conditions, data):
    deleted = data.draw(st.sets(st.integers(0, max(len(records) - 1, 0))), label="deleted")
    db = module_kit.db("query")
    table = load(module_kit, db, records, deleted)
    live = {k: {**r, "id": k} for k, r in enumerate(records) if k not in deleted}
    for condition in conditions:
        expected = {k for k, record in live.items() if matches(condition, record)}
        found = db.read_sync(query.search, table, condition)
        assert {jsonx.loads(doc)["id"] for doc in found} == expected, condition
        assert db.read_sync(query.count, table, condition) == len(expected)
        assert db.read_sync(query.keys, table, condition) == sorted(expected)
    module_kit.drop(db, table)


# --- cases the property found, pinned ----------------------------------------------------


@pytest.fixture
def dogs(kit, db):
    table = kit.table(db, "dog").name
    kit.insert(
        db,
        table,
        {"id": 1, "name": "Penny", "age": 5, "weight": 20.5, "good": True, "owner": None},
        {"id": 2, "name": "Kato", "age": 3, "weight": 12.0, "good": False},
        {"id": 3, "name": "penny two", "age": 5, "weight": 31.25},
        {"id": 4, "name": "Ébène", "age": 9, "good": True},
        {"id": 5, "name": "gone", "age": 1},
    )
    kit.txn(db, WriteOp("delete", table, ids=[5]))
    return lambda fn, *args: db.read_sync(fn, table, *args)


def ids(docs: list[str]) -> list:
    return [jsonx.loads(d)["id"] for d in docs]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # NOT of a test on a missing attribute is true, as the evaluator says (SQL NULL leaked)
        (Not(Compare("good", "equals", True)), {2, 3}),
        (Not(Compare("weight", "greater_than", 15)), {2, 4}),
        (Not(Compare("owner", "contains", "x")), {1, 2, 3, 4}),
        (
            Not(Group("or", (Compare("good", "equals", False), Compare("nope", "equals", 1)))),
            {1, 3, 4},
        ),
        (Not(Not(Compare("good", "equals", True))), {1, 4}),
        # not_equal needs the attribute to be there
        (Compare("good", "not_equal", True), {2}),
        (Compare("owner", "is_null", None), {1, 2, 3, 4}),
        (Compare("owner", "is_not_null", None), set()),
    ],
    ids=repr,
)
def test_negation_and_missing_attributes(dogs, condition, expected):
    assert set(ids(dogs(query.search, condition))) == expected
    assert {k for k in range(1, 5) if k in expected} == set(dogs(query.keys, condition))


@pytest.mark.parametrize(
    ("comparator", "needle", "expected"),
    [
        ("contains", "Pen", {1}),  # at the start
        ("contains", "enn", {1, 3}),
        ("contains", "two", {3}),  # at the end
        ("contains", "", {1, 2, 3, 4}),  # every string, and only strings
        ("contains", 5, set()),  # a number needle is looked for as text
        ("starts_with", "penny", {3}),
        ("starts_with", "Ka", {2}),
        ("starts_with", "", {1, 2, 3, 4}),
        ("starts_with", "Penny two", set()),
        ("ends_with", "ny", {1}),
        ("ends_with", "ène", {4}),
        ("ends_with", "penny two", {3}),
        ("ends_with", "xpenny two", set()),
        ("ends_with", "", {1, 2, 3, 4}),
    ],
)
def test_text_comparators(dogs, comparator, needle, expected):
    condition = Compare("name", comparator, needle)
    assert set(ids(dogs(query.search, condition))) == expected
    assert set(ids(dogs(query.search, Compare("age", comparator, needle)))) == set()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("Penny%", {1}),
        ("penny%", {3}),  # case-sensitive, like every other comparator
        ("PENNY", set()),
        ("%y%", {1, 3}),
        ("_ato", {2}),
        ("Ébène", {4}),
        ("_bène", {4}),  # "_" is one character, even a non-ASCII one
        ("%", {1, 2, 3, 4}),
        ("Penn*", set()),  # GLOB's own wildcards are plain characters in LIKE
        ("Pe?ny", set()),
        ("[P]enny", set()),
    ],
)
def test_like_patterns(dogs, pattern, expected):
    condition = Compare("name", "like", pattern)
    assert set(ids(dogs(query.search, condition))) == expected
    records = dogs(lambda c, t: [jsonx.loads(d) for d in query.search(c, t, None)])
    assert {r["id"] for r in records if matches(condition, r)} == expected


def test_like_takes_glob_wildcards_literally(kit, db):
    table = kit.table(db).name
    kit.insert(db, table, {"id": 1, "s": "a*b?[c]"}, {"id": 2, "s": "axbyzc]"})
    found = db.read_sync(query.search, table, Compare("s", "like", "a*b?[c]"))
    assert ids(found) == [1]
    assert ids(db.read_sync(query.search, table, Compare("s", "like", "a_b_[c]"))) == [1]


@pytest.mark.parametrize("comparator", [*ORDERED, "between"])
def test_ordering_against_null_is_refused_naming_the_value(dogs, comparator):
    value = [None, 5] if comparator == "between" else None
    with pytest.raises(ClientError, match="cannot order by NoneType"):
        dogs(query.search, Compare("age", comparator, value))


@pytest.mark.parametrize("value", [{"a": 1}, [1]], ids=repr)
def test_equality_with_an_object_or_list_is_refused(dogs, value):
    with pytest.raises(ClientError, match="cannot compare"):
        dogs(query.search, Compare("age", "equals", value))


@pytest.mark.parametrize(
    "name", ["with space", "dotted.name", "it's", "brackets[0]", "ünï", "$.x", "a'b.c"]
)
def test_attributes_with_unusual_names_are_searchable(kit, db, name):
    table = kit.table(db).name
    kit.insert(db, table, {"id": 1, name: "x"}, {"id": 2, name: "y"})
    found = db.read_sync(query.search, table, Compare(name, "equals", "x"))
    assert ids(found) == [1]
    assert db.read_sync(query.search, table, None, [Sort(name, True)])[-1] == found[0]


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash"])
def test_attributes_with_quotes_or_backslashes_are_searchable(kit, db, name):
    table = kit.table(db).name
    kit.insert(db, table, {"id": 1, name: "x"})
    assert ids(db.read_sync(query.search, table, Compare(name, "equals", "x"))) == [1]


# --- sorting, paging, counting ----------------------------------------------------------


def test_search_without_a_condition_returns_live_records_in_key_order(dogs):
    assert ids(dogs(query.search, None)) == [1, 2, 3, 4]


def test_sort_ascending_descending_and_chained(dogs):
    assert ids(dogs(query.search, None, [Sort("weight")])) == [4, 2, 1, 3]  # missing first
    assert ids(dogs(query.search, None, [Sort("weight", True)])) == [3, 1, 2, 4]
    by_age_then_name = [Sort("age", True), Sort("name")]
    assert ids(dogs(query.search, None, by_age_then_name)) == [4, 1, 3, 2]
    assert ids(dogs(query.search, None, [Sort("age"), Sort("name", True)])) == [2, 3, 1, 4]
    # equal sort values fall back to the primary key
    assert ids(dogs(query.search, None, [Sort("age", True)])) == [4, 1, 3, 2]


def test_limit_and_offset_page_through_the_sorted_result(dogs):
    order = [Sort("age"), Sort("name")]
    full = ids(dogs(query.search, None, order))
    assert ids(dogs(query.search, None, order, 2)) == full[:2]
    assert ids(dogs(query.search, None, order, 2, 1)) == full[1:3]
    assert ids(dogs(query.search, None, order, None, 3)) == full[3:]
    assert ids(dogs(query.search, None, order, 0)) == []
    assert ids(dogs(query.search, None, order, 10, 10)) == []


def test_count_and_keys_honour_the_condition_and_skip_tombstones(dogs):
    five = Compare("age", "equals", 5)
    assert dogs(query.count, None) == 4
    assert dogs(query.count, five) == 2
    assert dogs(query.keys, five) == [1, 3]
    assert dogs(query.count, Compare("name", "equals", "gone")) == 0


def test_aggregates(dogs):
    specs = [
        ("COUNT", None),
        ("COUNT", "weight"),
        ("COUNT", "owner"),
        ("SUM", "age"),
        ("AVG", "age"),
        ("MIN", "weight"),
        ("MAX", "name"),
    ]
    assert dogs(query.aggregate, None, specs) == [4, 3, 0, 22, 5.5, 12.0, "Ébène"]
    good = Compare("good", "equals", True)
    assert dogs(query.aggregate, good, [("COUNT", None), ("SUM", "age")]) == [2, 14]
    nothing = Compare("age", "greater_than", 100)
    assert dogs(query.aggregate, nothing, [("COUNT", None), ("SUM", "age"), ("MAX", "age")]) == [
        0,
        None,
        None,
    ]


def test_by_ids_keeps_the_request_order_and_drops_missing_and_deleted(dogs):
    assert ids(dogs(query.by_ids, [3, 5, 99, 1, 3, "1", 2])) == [3, 1, 2]
    assert dogs(query.by_ids, []) == []


def test_json_path_quotes_single_quotes_for_sql():
    assert query.json_path("it's") == "'$.\"it''s\"'"


def test_order_clause_always_ends_with_the_primary_key():
    assert query.order_clause([]) == "ORDER BY pk"
    assert query.order_clause([Sort("a", True)]).endswith("DESC, pk")
