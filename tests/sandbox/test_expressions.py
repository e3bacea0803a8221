"""Tests for the TaskRouter expression language: evaluation table, syntax errors, limits.

Property tests build expressions from the grammar and check them against a reference evaluator.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskrouter_sandbox import expressions
from taskrouter_sandbox.expressions import (
    MAX_NESTING_DEPTH,
    MAX_SOURCE_LENGTH,
    Expression,
    ExpressionError,
    parse,
)

ALICE = {"languages": ["en", "es"]}
BOB = {"languages": ["en"]}

ATTRIBUTES = {
    "name": "Alice Smith",
    "level": 5,
    "rating": 4.5,
    "vip": True,
    "count": 0,
    "one": 1,
    "text_one": "1",
    "nothing": None,
    "skills": ["support", "sales"],
    "numbers": [1, 2.5, True],
    "empty": [],
    "object": {"array": ["a", "b", "c"], "attr": "bar", "nested": {"deep": 7}},
    "records": [{"name": "first"}, {"name": "second", "tags": ["x"]}],
    "_under": "u",
}

TARGET_CONTEXT = {
    "task": {"selected_language": "es", "priority": 3, "skills": [{"name": "billing"}]},
    "worker": {
        "languages": ["en", "es"],
        "sid": "WK" + "0" * 32,
        "friendly_name": "Alice",
        "activity_name": "Idle",
        "activity_sid": "WA" + "1" * 32,
    },
    "taskrouter": {"dayOfWeek": "Mon", "currentTime": 930, "currentHour": 9},
}

EVALUATION_TABLE = [
    # The quickstart's queues and workflow filter.
    ('languages HAS "es"', ALICE, True),
    ('languages HAS "es"', BOB, False),
    ('languages HAS "en"', BOB, True),
    ('languages HAS "es"', {}, False),
    ('selected_language == "es"', {"selected_language": "es"}, True),
    ('selected_language == "es"', {"selected_language": "en"}, False),
    ('selected_language == "es"', {}, False),
    ("1==1", {}, True),
    ("1 == 2", {}, False),
    ("'a' == 'a'", {}, True),
    ('"apple" != "orange"', {}, True),
    # Equality and its alias, type-aware.
    ("name == 'Alice Smith'", ATTRIBUTES, True),
    ("name = 'Alice Smith'", ATTRIBUTES, True),
    ('name == "alice smith"', ATTRIBUTES, False),
    ("level == 5", ATTRIBUTES, True),
    ("level == 5.0", ATTRIBUTES, True),
    ("rating == 4.5", ATTRIBUTES, True),
    ("one == true", ATTRIBUTES, False),
    ("vip == 1", ATTRIBUTES, False),
    ("vip == true", ATTRIBUTES, True),
    ("vip == TRUE", ATTRIBUTES, True),
    ("count == false", ATTRIBUTES, False),
    ("text_one == 1", ATTRIBUTES, False),
    ("text_one == '1'", ATTRIBUTES, True),
    ("one == '1'", ATTRIBUTES, False),
    ("nothing == null", ATTRIBUTES, True),
    ("missing == null", ATTRIBUTES, True),
    ("missing == NULL", ATTRIBUTES, True),
    ("missing == nothing", ATTRIBUTES, True),
    ("null == null", {}, True),
    ("name == null", ATTRIBUTES, False),
    ("missing == ''", ATTRIBUTES, False),
    ("missing == 0", ATTRIBUTES, False),
    ("missing == false", ATTRIBUTES, False),
    ("1 == 1.0", {}, True),
    ("true == 1", {}, False),
    ("'1' == 1", {}, False),
    ("-1 == -1.0", {}, True),
    ("level == -5", {"level": -5}, True),
    # A scalar operator on an array (or object) is false, both ways round.
    ("skills == 'support'", ATTRIBUTES, False),
    ("skills != 'support'", ATTRIBUTES, False),
    ("skills == ['support', 'sales']", ATTRIBUTES, False),
    ("object == object", ATTRIBUTES, False),
    ("object != 'x'", ATTRIBUTES, False),
    ("[1] == [1]", {}, False),
    ("empty == []", ATTRIBUTES, False),
    # Inequality.
    ("name != 'Bob'", ATTRIBUTES, True),
    ("name != 'Alice Smith'", ATTRIBUTES, False),
    ("level != 5.0", ATTRIBUTES, False),
    ("vip != 1", ATTRIBUTES, True),
    ("missing != 'es'", ATTRIBUTES, True),
    ("missing != null", ATTRIBUTES, False),
    ("0 != 1", {}, True),
    # Ordering: two numbers or two strings, else false.
    ("level > 4", ATTRIBUTES, True),
    ("level > 5", ATTRIBUTES, False),
    ("level >= 5", ATTRIBUTES, True),
    ("level < 5.5", ATTRIBUTES, True),
    ("level <= 4.99", ATTRIBUTES, False),
    ("rating >= 4.5", ATTRIBUTES, True),
    ("level > -1", ATTRIBUTES, True),
    ("name > 'Alice'", ATTRIBUTES, True),
    ("name < 'B'", ATTRIBUTES, True),
    ("name <= 'Alice Smith'", ATTRIBUTES, True),
    ("name > 5", ATTRIBUTES, False),
    ("text_one < 2", ATTRIBUTES, False),
    ("vip > 0", ATTRIBUTES, False),
    ("vip >= true", ATTRIBUTES, False),
    ("missing < 1", ATTRIBUTES, False),
    ("missing >= null", ATTRIBUTES, False),
    ("skills > 1", ATTRIBUTES, False),
    ("2 > 1", {}, True),
    # CONTAINS: substring of two strings.
    ("name CONTAINS 'Smith'", ATTRIBUTES, True),
    ("name contains 'smith'", ATTRIBUTES, False),
    ("name Contains ''", ATTRIBUTES, True),
    ("skills CONTAINS 'support'", ATTRIBUTES, False),
    ("level CONTAINS '5'", ATTRIBUTES, False),
    ("missing CONTAINS 'a'", ATTRIBUTES, False),
    ("'abc' CONTAINS 'b'", {}, True),
    # HAS and its alias >-.
    ("skills HAS 'support'", ATTRIBUTES, True),
    ("skills has 'marketing'", ATTRIBUTES, False),
    ("skills >- 'sales'", ATTRIBUTES, True),
    ("skills>-'sales'", ATTRIBUTES, True),
    ("numbers HAS 1", ATTRIBUTES, True),
    ("numbers HAS 2.5", ATTRIBUTES, True),
    ("numbers HAS true", ATTRIBUTES, True),
    ("numbers HAS 1.0", ATTRIBUTES, True),
    ("numbers HAS '1'", ATTRIBUTES, False),
    ("numbers HAS false", ATTRIBUTES, False),
    ("[1, 2] HAS true", {}, False),
    ("[true] HAS 1", {}, False),
    ("[null] HAS missing", {}, True),
    ("empty HAS 'a'", ATTRIBUTES, False),
    ("name HAS 'Alice'", ATTRIBUTES, False),
    ("'a' HAS 'a'", {}, False),
    ("skills HAS skills", ATTRIBUTES, False),
    ("['a', 'b'] HAS 'b'", {}, True),
    # IN and its alias <-.
    ("name IN ['Alice Smith', 'Bob']", ATTRIBUTES, True),
    ("name in ['Bob']", ATTRIBUTES, False),
    ("name <- ['Alice Smith']", ATTRIBUTES, True),
    ("level IN [1, 5]", ATTRIBUTES, True),
    ("level IN [5.0]", ATTRIBUTES, True),
    ("one IN [true]", ATTRIBUTES, False),
    ("text_one IN [1]", ATTRIBUTES, False),
    ("missing IN [null]", ATTRIBUTES, True),
    ("missing IN ['a']", ATTRIBUTES, False),
    ("name IN []", ATTRIBUTES, False),
    ("name IN 'Alice Smith'", ATTRIBUTES, False),
    ("'a' IN 'a'", {}, False),
    ("skills IN ['support', 'sales']", ATTRIBUTES, False),
    ("'support' IN skills", ATTRIBUTES, True),
    ("'x' IN records[1].tags", ATTRIBUTES, True),
    # NOT IN: a scalar on the left and an array on the right, else false.
    ("name NOT IN ['Bob']", ATTRIBUTES, True),
    ("name not in ['Alice Smith']", ATTRIBUTES, False),
    ("name NoT   In ['Bob']", ATTRIBUTES, True),
    ("level NOT IN [5.0]", ATTRIBUTES, False),
    ("vip NOT IN [1]", ATTRIBUTES, True),
    ("name NOT IN []", ATTRIBUTES, True),
    ("missing NOT IN ['a']", ATTRIBUTES, True),
    ("missing NOT IN [null]", ATTRIBUTES, False),
    ("name NOT IN 'Bob'", ATTRIBUTES, False),
    ("name NOT IN missing", ATTRIBUTES, False),
    ("skills NOT IN ['x']", ATTRIBUTES, False),
    ("object NOT IN ['x']", ATTRIBUTES, False),
    # Logic, precedence (AND binds tighter), parentheses, case-insensitive keywords.
    ("level == 5 AND vip == true", ATTRIBUTES, True),
    ("level == 5 and vip == false", ATTRIBUTES, False),
    ("level == 4 OR vip == true", ATTRIBUTES, True),
    ("level == 4 or vip == false", ATTRIBUTES, False),
    ("1 == 1 OR 1 == 2 AND 1 == 2", {}, True),
    ("(1 == 1 OR 1 == 2) AND 1 == 2", {}, False),
    ("1 == 2 AND 1 == 2 OR 1 == 1", {}, True),
    ("1 == 2 AND (1 == 2 OR 1 == 1)", {}, False),
    ("level == 4 Or level == 5 AnD name CONTAINS 'Smith'", ATTRIBUTES, True),
    ("(skills HAS 'support') AND (level >= 5)", ATTRIBUTES, True),
    ("((((level == 5))))", ATTRIBUTES, True),
    ("a == 1 AND b == 2 AND c == 3", {"a": 1, "b": 2, "c": 3}, True),
    ("a == 1 AND b == 2 AND c == 3", {"a": 1, "b": 2, "c": 4}, False),
    ("a == 9 OR b == 9 OR c == 3", {"a": 1, "b": 2, "c": 3}, True),
    ("a == 9 OR b == 9 OR c == 9", {"a": 1, "b": 2, "c": 3}, False),
    ("1 == 2 OR name == 'Alice Smith'", ATTRIBUTES, True),
    ("1 == 1 AND name == 'Bob'", ATTRIBUTES, False),
    # Literals.
    ('name == "Alice Smith"', ATTRIBUTES, True),
    ("q == 'it\\'s'", {"q": "it's"}, True),
    ('q == "say \\"hi\\""', {"q": 'say "hi"'}, True),
    ("q == 'back\\\\slash'", {"q": "back\\slash"}, True),
    ('q == "it\'s"', {"q": "it's"}, True),
    ("q == 'a AND b == c'", {"q": "a AND b == c"}, True),
    ("q == 'ünï ✓'", {"q": "ünï ✓"}, True),
    ("x == 3.141529", {"x": 3.141529}, True),
    ("x == 1.00", {"x": 1}, True),
    ("x == -0.5", {"x": -0.5}, True),
    ("x == 12345678901234567890", {"x": 12345678901234567890}, True),
    ("x == False", {"x": False}, True),
    ("x IN ['a', \"b\", 1, 2.5, true, null]", {"x": 2.5}, True),
    ("x IN ['a', \"b\", 1, 2.5, true, null]", {"x": "b"}, True),
    ("x IN [ 'a' , 'b' ]", {"x": "c"}, False),
    ("\tx\n==\r\n1 ", {"x": 1}, True),
    # Paths and indexes.
    ("object.attr == 'bar'", ATTRIBUTES, True),
    ("object.array[2] == 'c'", ATTRIBUTES, True),
    ("object.array[0] == 'a'", ATTRIBUTES, True),
    ("object.array HAS 'b'", ATTRIBUTES, True),
    ("object.nested.deep > 6", ATTRIBUTES, True),
    ("records[1].name == 'second'", ATTRIBUTES, True),
    ("records[1].tags[0] == 'x'", ATTRIBUTES, True),
    ("_under == 'u'", ATTRIBUTES, True),
    ("object.array[3] == null", ATTRIBUTES, True),
    ("object.array[3] == 'c'", ATTRIBUTES, False),
    ("object.attr[0] == 'b'", ATTRIBUTES, False),
    ("object.missing.deeper == null", ATTRIBUTES, True),
    ("name.first == null", ATTRIBUTES, True),
    ("level.x == null", ATTRIBUTES, True),
    ("skills.support == null", ATTRIBUTES, True),
    ("object[0] == null", ATTRIBUTES, True),
    ("vip[0] == null", ATTRIBUTES, True),
    ("Name == 'Alice Smith'", ATTRIBUTES, False),
    ("object.and == 1", {"object": {"and": 1}}, True),
    ("object.2nd == 'x'", {"object": {"2nd": "x"}}, True),
    # Target expressions: names under task., worker. and taskrouter.
    ("task.selected_language == 'es'", TARGET_CONTEXT, True),
    ("worker.languages HAS task.selected_language", TARGET_CONTEXT, True),
    ("task.selected_language IN worker.languages", TARGET_CONTEXT, True),
    ("worker.activity_name in ['Idle', 'High Value Tasks']", TARGET_CONTEXT, True),
    ("worker.friendly_name != 'Bob' AND task.priority >= 3", TARGET_CONTEXT, True),
    ("task.skills[0].name == 'billing'", TARGET_CONTEXT, True),
    ("taskrouter.currentTime >= 900 AND taskrouter.dayOfWeek == 'Mon'", TARGET_CONTEXT, True),
    ("worker.sid == task.sid", TARGET_CONTEXT, False),
    ("selected_language == 'es'", TARGET_CONTEXT, False),
]


@pytest.mark.parametrize(("source", "context", "expected"), EVALUATION_TABLE)
def test_evaluation_table(source: str, context: dict, expected: bool) -> None:
    result = parse(source).evaluate(context)
    assert result is expected


def test_every_operator_and_alias_appears_in_the_table() -> None:
    sources = " ".join(source.upper() for source, _, _ in EVALUATION_TABLE)
    for operator in ("==", " = ", "!=", "<", "<=", ">", ">=", "CONTAINS", "HAS", ">-", " IN "):
        assert operator in sources, operator
    for operator in ("<-", "NOT IN", " AND ", " OR ", "TRUE", "FALSE", "NULL"):
        assert operator in sources, operator


def test_evaluate_accepts_any_mapping_and_tolerates_non_mappings() -> None:
    expression = parse("object.attr == 'bar' AND level == 5")
    proxied = MappingProxyType({"object": MappingProxyType({"attr": "bar"}), "level": 5})
    assert expression.evaluate(proxied) is True
    for context in (None, [], "object", 5, {"object": ["bar"]}, {"object": None}):
        assert expression.evaluate(context) is False  # type: ignore[arg-type]
    assert parse("missing == null").evaluate(None) is True  # type: ignore[arg-type]
    assert parse("a[0] == 1").evaluate({"a": (1, 2)}) is True


def test_roots_name_the_first_segment_of_every_name() -> None:
    expression = parse("task.type == 'x' AND worker.skills[0] HAS 'y' OR languages HAS 'es'")
    assert expression.roots == frozenset({"task", "worker", "languages"})
    assert parse("1==1").roots == frozenset()
    assert parse("'es' IN worker.languages").roots == frozenset({"worker"})
    assert isinstance(expression.roots, frozenset)
    assert (
        expression.source == "task.type == 'x' AND worker.skills[0] HAS 'y' OR languages HAS 'es'"
    )


def test_parse_is_memoised_and_evaluation_never_parses_again(monkeypatch) -> None:
    source = "languages HAS 'es' AND level > 3 AND name IN ['a', 'b'] AND x == 1.5"
    expression = parse(source)
    assert parse(source) is expression

    def no_tokenizing(text: str) -> None:
        raise AssertionError("evaluate must not scan the source again")

    monkeypatch.setattr(expressions, "_tokenize", no_tokenizing)
    context = {"languages": ["es"], "level": 4, "name": "a", "x": 1.5}
    for _ in range(100):
        assert expression.evaluate(context) is True
    assert expression.evaluate({}) is False


def test_expression_is_immutable_and_compares_by_source() -> None:
    expression = parse("a == 1")
    with pytest.raises(AttributeError):
        expression.source = "b == 2"  # type: ignore[misc]
    assert expression == parse("a == 1")
    assert expression != parse("a == 2")
    assert hash(expression) == hash("a == 1")
    assert repr(expression) == "Expression('a == 1')"


SYNTAX_ERRORS = [
    ("", "the expression is empty", 0),
    ("   ", "the expression is empty", 0),
    ("languages", "expected a comparison operator after 'languages'", 9),
    ("true", "expected a comparison operator after 'true'", 4),
    ("'es'", "expected a comparison operator after \"'es'\"", 4),
    ("a b", "expected a comparison operator after 'a', found 'b'", 2),
    ("a ==", "expected a value after '=='", 4),
    ("a == )", "expected a value after '==', found ')'", 5),
    ("a HAS", "expected a value after 'HAS'", 5),
    ("a not in", "expected a value after 'not in'", 8),
    ("a === 1", "expected a value after '==', found '='", 4),
    ("a == 1 AND", "expected a comparison after 'AND'", 10),
    ("a == 1 or", "expected a comparison after 'or'", 9),
    ("a == 1 OR OR b == 1", "expected a comparison after 'OR', found 'OR'", 10),
    ("AND a == 1", "expected a comparison, found 'AND'", 0),
    ("== 1", "expected a comparison, found '=='", 0),
    ("()", "expected a comparison, found ')'", 1),
    ("(a == 1", "expected ')' to close the '(' opened at position 0", 7),
    ("((a == 1) AND (b == 2)", "expected ')' to close the '(' opened at position 0", 22),
    ("a == 1)", "unexpected ')' without a matching '('", 6),
    ("a == 1 b == 2", "expected AND, OR or the end of the expression, found 'b'", 7),
    ("a == b == c", "expected AND, OR or the end of the expression, found '=='", 7),
    ("a NOT 1", "expected IN after NOT, found '1'", 6),
    ("a NOT", "expected IN after NOT", 5),
    ("NOT a == 1", "expected a comparison, found 'NOT'", 0),
    ("a ! 1", "unexpected character '!'", 2),
    ("a == 1 && b == 2", "unexpected character '&'", 7),
    ("a == 1 @", "unexpected character '@'", 7),
    ("a == #", "unexpected character '#'", 5),
    ("a == - 1", "a '-' must be followed by digits", 5),
    ("first-name == 'x'", "hyphens are not allowed in names", 5),
    ("task.first-name == 'x'", "hyphens are not allowed in names", 10),
    ("a[0]-b == 1", "hyphens are not allowed in names", 4),
    ("a. == 1", "expected a key after '.'", 2),
    ("a.b. == 1", "expected a key after '.'", 4),
    ("a[x] == 1", "expected an array index (digits) and ']'", 2),
    ("a[-1] == 1", "expected an array index (digits) and ']'", 2),
    ("a[1 == 1", "expected an array index (digits) and ']'", 2),
    ("a[", "expected an array index (digits) and ']'", 2),
    ("'abc == 1", "unterminated string (missing closing ')", 0),
    ('a == "abc', 'unterminated string (missing closing ")', 5),
    ("a == 'abc\\'", "unterminated string (missing closing ')", 5),
    ("a == 'x\\ny'", "unsupported escape '\\n' in string (only \\', \\\" and \\\\)", 7),
    ("a == 1.", "expected digits after the decimal point", 7),
    ("a == 1.x", "expected digits after the decimal point", 7),
    ("a == .5", "unexpected character '.'", 5),
    ("a == 1e5", "invalid number '1e5'", 5),
    ("a == 1.5.2", "invalid number '1.5.2'", 5),
    ("a == 12abc", "invalid number '12abc'", 5),
    ("a IN [1,]", "expected a constant after ',' in the array, found ']'", 8),
    ("a IN [,1]", "expected a constant after '[' in the array, found ','", 6),
    ("a IN [1 2]", "expected ',' or ']' in the array opened at position 5, found '2'", 8),
    ("a IN [1", "expected ',' or ']' in the array opened at position 5", 7),
    ("a IN [b]", "expected a constant after '[' in the array, found 'b'", 6),
    ("a IN [1, [2]]", "expected a constant after ',' in the array, found '['", 9),
    ("a IN ['x', (1)]", "expected a constant after ',' in the array, found '('", 11),
    ("a == (1)", "expected a value after '==', found '('", 5),
    ("a.true == 1 AND true.a == 1", "unexpected character '.'", 20),
    ("a == 1 AND b == 2 AND 'c'", "expected a comparison operator after \"'c'\"", 25),
    ("x == 'a very long string value that goes on and on' 1", "expected AND, OR or", 52),
]


@pytest.mark.parametrize(("source", "message", "position"), SYNTAX_ERRORS)
def test_syntax_errors_name_what_is_wrong_and_where(
    source: str, message: str, position: int
) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    error = caught.value
    assert error.message.startswith(message)
    if not message.startswith("expected AND, OR or"):
        assert error.message == message
    assert error.position == position
    assert str(error) == f"{error.message} at position {position}"
    assert isinstance(error, ValueError)


def test_long_tokens_are_shortened_in_messages() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("x == 'a very long string value that goes on and on' 1")
    with pytest.raises(ExpressionError) as caught_long:
        parse("x == 1 " + "y" * 200)
    assert caught.value.message == "expected AND, OR or the end of the expression, found '1'"
    assert caught_long.value.message == (
        "expected AND, OR or the end of the expression, found '" + "y" * 27 + "...'"
    )


@pytest.mark.parametrize("source", [None, 5, b"a == 1", ["a == 1"], {"a": 1}])
def test_non_string_sources_are_rejected(source: Any) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    assert caught.value.message == (f"an expression must be a string, not {type(source).__name__}")
    assert caught.value.position == 0


def test_source_length_is_capped() -> None:
    clause = "a == 1 OR "
    fitting = clause * ((MAX_SOURCE_LENGTH - 6) // len(clause)) + "a == 1"
    fitting = fitting + " " * (MAX_SOURCE_LENGTH - len(fitting))
    assert len(fitting) == MAX_SOURCE_LENGTH
    assert parse(fitting).evaluate({"a": 1}) is True

    for too_long in (fitting + " ", "a == '" + "x" * 1_000_000 + "'", "(" * 100_000):
        with pytest.raises(ExpressionError) as caught:
            parse(too_long)
        assert caught.value.message == "the expression is longer than 4096 characters"
        assert caught.value.position == MAX_SOURCE_LENGTH


def test_nesting_depth_is_capped() -> None:
    deepest = "(" * MAX_NESTING_DEPTH + "a == 1" + ")" * MAX_NESTING_DEPTH
    assert parse(deepest).evaluate({"a": 1}) is True
    assert parse(deepest).evaluate({"a": 2}) is False

    too_deep = "(" * (MAX_NESTING_DEPTH + 1) + "a == 1" + ")" * (MAX_NESTING_DEPTH + 1)
    with pytest.raises(ExpressionError) as caught:
        parse(too_deep)
    assert caught.value.message == "parentheses nest deeper than 64 levels"
    assert caught.value.position == MAX_NESTING_DEPTH

    # Depth is nesting, not the number of groups in a row.
    many_groups = " AND ".join(["(a == 1)"] * 300)
    assert parse(many_groups).evaluate({"a": 1}) is True

    # Two thousand unclosed parentheses fit the length cap: still a clear error.
    with pytest.raises(ExpressionError) as caught:
        parse("(" * 2000)
    assert caught.value.message == "parentheses nest deeper than 64 levels"


def test_long_chains_evaluate_without_deep_recursion() -> None:
    chain = " OR ".join(f"a=={n}" for n in range(400))
    assert len(chain) <= MAX_SOURCE_LENGTH
    expression = parse(chain)
    assert expression.evaluate({"a": 399}) is True
    assert expression.evaluate({"a": 400}) is False


def test_expression_error_survives_pickling() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("a ==")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.position, str(copy)) == (
        "expected a value after '=='",
        4,
        "expected a value after '==' at position 4",
    )


# --- property tests -------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

KEYS = ["a", "b", "languages", "task", "level"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-1000, max_value=1000)
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(max_size=4)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=8,
)
json_contexts = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4)


def _spelled(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.capitalize()])


@st.composite
def string_literals(draw) -> tuple[str, str]:
    value = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=6))
    quote = draw(st.sampled_from(["'", '"']))
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return value, f"{quote}{escaped}{quote}"


@st.composite
def number_literals(draw) -> tuple[int | float, str]:
    whole = draw(st.integers(min_value=-1000, max_value=1000))
    if draw(st.booleans()):
        return whole, str(whole)
    fraction = draw(st.integers(min_value=0, max_value=999))
    text = f"{'-' if whole < 0 else ''}{abs(whole)}.{fraction}"
    return float(text), text


@st.composite
def word_literals(draw) -> tuple[bool | None, str]:
    value = draw(st.sampled_from([True, False, None]))
    word = {True: "TRUE", False: "FALSE", None: "NULL"}[value]
    return value, draw(_spelled(word))


scalar_literals = string_literals() | number_literals() | word_literals()


@st.composite
def array_literals(draw) -> tuple[list, str]:
    elements = draw(st.lists(scalar_literals, max_size=4))
    return [value for value, _ in elements], "[" + ", ".join(text for _, text in elements) + "]"


@st.composite
def names(draw) -> tuple[tuple, str]:
    path: list[str | int] = [draw(st.sampled_from(KEYS))]
    text = path[0]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        if draw(st.booleans()):
            index = draw(st.integers(min_value=0, max_value=3))
            path.append(index)
            text += f"[{index}]"
        else:
            key = draw(st.sampled_from(KEYS))
            path.append(key)
            text += f".{key}"
    return tuple(path), text


operands = (
    names().map(lambda pair: ("name", pair[0], pair[1]))
    | scalar_literals.map(lambda pair: ("constant", pair[0], pair[1]))
    | array_literals().map(lambda pair: ("constant", pair[0], pair[1]))
)

OPERATOR_SPELLINGS = {
    "==": ["==", "="],
    "!=": ["!="],
    "<": ["<"],
    "<=": ["<="],
    ">": [">"],
    ">=": [">="],
    "CONTAINS": ["CONTAINS", "contains", "Contains"],
    "HAS": ["HAS", "has", ">-"],
    "IN": ["IN", "in", "<-"],
    "NOT IN": ["NOT IN", "not in", "Not  In"],
}


@st.composite
def comparisons(draw) -> tuple[tuple, str]:
    operator = draw(st.sampled_from(sorted(OPERATOR_SPELLINGS)))
    spelling = draw(st.sampled_from(OPERATOR_SPELLINGS[operator]))
    left = draw(operands)
    right = draw(operands)
    return ("compare", operator, left, right), f"{left[2]} {spelling} {right[2]}"


def _groups(children: st.SearchStrategy) -> st.SearchStrategy:
    """An OR of ANDs written flat, so the parser's precedence decides the grouping."""

    @st.composite
    def build(draw) -> tuple[tuple, str]:
        disjuncts = []
        texts = []
        for _ in range(draw(st.integers(min_value=1, max_value=2))):
            atoms = draw(st.lists(children, min_size=1, max_size=2))
            disjuncts.append(tuple(tree for tree, _ in atoms))
            joiner = f" {draw(_spelled('AND'))} "
            texts.append(joiner.join(text for _, text in atoms))
        joiner = f" {draw(_spelled('OR'))} "
        return ("or", tuple(disjuncts)), "(" + joiner.join(texts) + ")"

    return build()


expressions_from_grammar = st.recursive(comparisons(), _groups, max_leaves=6)


def _reference_value(context: Any, operand: tuple) -> Any:
    kind, value, _ = operand
    if kind == "constant":
        return value
    current = context
    for step in value:
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return None
        elif not isinstance(current, dict):
            return None
        current = current[step] if isinstance(step, int) else current.get(step)
    return current


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


SCALAR_KINDS = {"null", "boolean", "number", "string"}


def _reference_equal(left: Any, right: Any) -> bool:
    kind = _kind(left)
    return kind in SCALAR_KINDS and kind == _kind(right) and left == right


def _reference_compare(operator: str, left: Any, right: Any) -> bool:
    left_kind, right_kind = _kind(left), _kind(right)
    both_scalars = left_kind in SCALAR_KINDS and right_kind in SCALAR_KINDS
    if operator == "==":
        return _reference_equal(left, right)
    if operator == "!=":
        return both_scalars and not _reference_equal(left, right)
    if operator in ("<", "<=", ">", ">="):
        if left_kind != right_kind or left_kind not in ("number", "string"):
            return False
        return {
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[operator]
    if operator == "CONTAINS":
        return left_kind == right_kind == "string" and right in left
    if operator == "HAS":
        return left_kind == "array" and any(_reference_equal(item, right) for item in left)
    if operator == "IN":
        return right_kind == "array" and any(_reference_equal(left, item) for item in right)
    assert operator == "NOT IN"
    if right_kind != "array" or left_kind not in SCALAR_KINDS:
        return False
    return not any(_reference_equal(left, item) for item in right)


def _reference_evaluate(tree: tuple, context: Mapping[str, Any]) -> bool:
    if tree[0] == "compare":
        _, operator, left, right = tree
        return _reference_compare(
            operator, _reference_value(context, left), _reference_value(context, right)
        )
    _, disjuncts = tree
    return any(all(_reference_evaluate(atom, context) for atom in atoms) for atoms in disjuncts)


@PROPERTY_SETTINGS
@given(
    st.text(max_size=60) | st.text(alphabet="ab01._-[](),'\"\\ =!<>&@ANDORTHSINCLUEF", max_size=60)
)
def test_any_text_parses_or_raises_expression_error(source: str) -> None:
    try:
        expression = parse(source)
    except ExpressionError as error:
        assert 0 <= error.position <= len(source)
        assert error.message
    else:
        assert isinstance(expression, Expression)
        assert expression.source == source
        assert expression.evaluate({}) in (True, False)


@PROPERTY_SETTINGS
@given(expressions_from_grammar, st.lists(json_contexts, min_size=1, max_size=2))
def test_grammar_expressions_evaluate_like_the_reference(
    generated: tuple[tuple, str], contexts: list[dict]
) -> None:
    tree, source = generated
    expression = parse(source)
    for context in contexts:
        result = expression.evaluate(context)
        assert isinstance(result, bool)
        assert result is _reference_evaluate(tree, context), (source, context)


@PROPERTY_SETTINGS
@given(st.text(min_size=1, max_size=40), st.sampled_from(["", "a == 1 AND ", "(", "x IN ["]))
def test_error_text_carries_the_position(noise: str, prefix: str) -> None:
    source = prefix + noise
    try:
        parse(source)
    except ExpressionError as error:
        assert str(error) == f"{error.message} at position {error.position}"
        assert str(error).endswith(f" at position {error.position}")
        assert error.args == (str(error),)


def test_the_parse_cache_holds_a_workspace_at_taskrouters_limits():
    # A worker's memberships are evaluated against every queue's target_workers: with 5,000
    # queues (TaskRouter's limit) and their workflows' filters, none may be parsed again.
    sources = [f'team == "t{index:05d}" AND skills HAS "billing"' for index in range(6000)]
    parsed = [parse(source) for source in sources]
    assert expressions.PARSE_CACHE_SIZE >= 10_000
    assert all(
        parse(source) is expression for source, expression in zip(sources, parsed, strict=True)
    )
