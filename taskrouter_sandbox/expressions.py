"""The TaskRouter expression language: target_workers, workflow filter and target expressions.

parse() turns source text into an Expression once; Expression.evaluate() runs it on JSON.
Over 600 lines, kept whole: one grammar, its tokenizer, parser and evaluator read best
together, and nothing else imports their parts.
"""

# Grammar (keywords are case-insensitive; whitespace is space, tab, CR or LF):
#
#     expression := conjunction ( OR conjunction )*
#     conjunction := group ( AND group )*
#     group      := "(" expression ")" | comparison
#     comparison := operand operator operand
#     operand    := constant | name | array
#     operator   := "==" | "=" | "!=" | "<" | "<=" | ">" | ">=" | CONTAINS
#                   | HAS | ">-" | IN | "<-" | NOT IN
#     array      := "[" ( constant ( "," constant )* )? "]"
#     constant   := string | number | true | false | null
#     name       := segment ( "." segment | "[" digits "]" )*
#
# Choices made where Twilio's documentation is silent or loose:
#
# - Twilio's page "Using TaskRouter Expressions" says expressions "are made up of simple
#   comparisons of constants and/or JSON keys". A bare name or constant (``languages``, ``true``)
#   is therefore not an expression and is rejected with "expected a comparison operator".
# - Strings take backslash escapes for either quote and for the backslash only; any other
#   escape is an error, so a typo cannot silently change a value.
# - Numbers are ``-?digits(.digits)?``; no exponent, no leading or trailing dot.
# - The first segment of a name starts with a letter or underscore and is not a keyword (a key
#   named ``in`` is reachable only as a later segment, ``attrs.in``). Later segments may be any
#   run of letters, digits and underscores. Hyphens are rejected with their own message.
# - Operators are read longest first, so ``a>-1`` is ``a HAS 1`` and ``a<-1`` is ``a IN 1``
#   (both false for a scalar ``a``); write ``a > -1`` for the comparison.
# - Values fall into null, boolean, number, string, array and object. ``==`` holds between two
#   scalars of the same kind with equal values (1 == 1.0; true is not 1; "1" is not 1; null ==
#   null, and a missing name is null). ``!=`` holds between two scalars that are not ``==``;
#   with an array or object on either side both are false. ``<`` ``<=`` ``>`` ``>=`` compare two
#   numbers or two strings, else false. CONTAINS needs two strings (substring). HAS needs an
#   array on the left holding an element ``==`` the right; IN needs an array on the right
#   holding an element ``==`` the left; NOT IN needs a scalar on the left and an array on the
#   right with no element ``==`` it, and is false for anything else (a non-array right side
#   does not make NOT IN true).

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

MAX_SOURCE_LENGTH = 4096
MAX_NESTING_DEPTH = 64

_WHITESPACE = frozenset(" \t\r\n")
_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | _DIGITS

# Longest first, so that "<=" wins over "<" and ">-" over ">".
_SYMBOL_OPERATORS = (
    ("==", "=="),
    ("!=", "!="),
    ("<=", "<="),
    (">=", ">="),
    (">-", "HAS"),
    ("<-", "IN"),
    ("=", "=="),
    ("<", "<"),
    (">", ">"),
)
_WORD_OPERATORS = {"HAS": "HAS", "IN": "IN", "CONTAINS": "CONTAINS"}
_CONSTANT_WORDS = {"TRUE": True, "FALSE": False, "NULL": None}

# Token kinds.
_CONSTANT = "constant"
_NAME = "name"
_OPERATOR = "operator"
_AND = "AND"
_OR = "OR"
_NOT = "NOT"
_OPEN = "("
_CLOSE = ")"
_OPEN_BRACKET = "["
_CLOSE_BRACKET = "]"
_COMMA = ","
_END = "end"


class ExpressionError(ValueError):
    """A syntax error in an expression, with the 0-based offset where it was found."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position

    def __reduce__(self):
        # ValueError would rebuild from the formatted text alone; keep both fields.
        return (type(self), (self.message, self.position))


class _Token:
    __slots__ = ("end", "kind", "position", "value")

    def __init__(self, kind: str, value: Any, position: int, end: int) -> None:
        self.kind = kind
        self.value = value
        self.position = position
        self.end = end


# --- scanning -------------------------------------------------------------------------------


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    length = len(source)
    i = 0
    while i < length:
        char = source[i]
        if char in _WHITESPACE:
            i += 1
            continue
        start = i
        if char in "()[],":
            tokens.append(_Token(char, char, start, start + 1))
            i += 1
        elif char in "'\"":
            value, i = _scan_string(source, start)
            tokens.append(_Token(_CONSTANT, value, start, i))
        elif char in _DIGITS or (char == "-" and i + 1 < length and source[i + 1] in _DIGITS):
            value, i = _scan_number(source, start)
            tokens.append(_Token(_CONSTANT, value, start, i))
        elif char in _NAME_START:
            tokens.append(_scan_word(source, start))
            i = tokens[-1].end
        else:
            for symbol, operator in _SYMBOL_OPERATORS:
                if source.startswith(symbol, i):
                    i += len(symbol)
                    tokens.append(_Token(_OPERATOR, operator, start, i))
                    break
            else:
                if char == "-":
                    raise ExpressionError("a '-' must be followed by digits", start)
                raise ExpressionError(f"unexpected character {char!r}", start)
    tokens.append(_Token(_END, None, length, length))
    return tokens


def _scan_string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    parts: list[str] = []
    i = start + 1
    chunk_start = i
    length = len(source)
    while i < length:
        char = source[i]
        if char == quote:
            parts.append(source[chunk_start:i])
            return "".join(parts), i + 1
        if char == "\\":
            parts.append(source[chunk_start:i])
            escaped = source[i + 1 : i + 2]
            if not escaped:
                break
            if escaped not in ("'", '"', "\\"):
                raise ExpressionError(
                    f"unsupported escape '\\{escaped}' in string (only \\', \\\" and \\\\)", i
                )
            parts.append(escaped)
            i += 2
            chunk_start = i
        else:
            i += 1
    raise ExpressionError(f"unterminated string (missing closing {quote})", start)


def _scan_number(source: str, start: int) -> tuple[int | float, int]:
    length = len(source)
    i = start + 1
    while i < length and source[i] in _DIGITS:
        i += 1
    is_float = False
    if i < length and source[i] == ".":
        if i + 1 >= length or source[i + 1] not in _DIGITS:
            raise ExpressionError("expected digits after the decimal point", i + 1)
        is_float = True
        i += 1
        while i < length and source[i] in _DIGITS:
            i += 1
    if i < length and (source[i] in _NAME_START or source[i] == "."):
        end = i
        while end < length and (source[end] in _NAME_CHARS or source[end] == "."):
            end += 1
        raise ExpressionError(f"invalid number {source[start:end]!r}", start)
    text = source[start:i]
    return (float(text) if is_float else int(text)), i


def _scan_word(source: str, start: int) -> _Token:
    """A keyword, a constant word, or a name with its dotted segments and indexes."""
    length = len(source)
    i = start
    while i < length and source[i] in _NAME_CHARS:
        i += 1
    word = source[start:i]
    upper = word.upper()
    if i < length and source[i] == "-" and i + 1 < length and source[i + 1] in _NAME_CHARS:
        raise ExpressionError("hyphens are not allowed in names", i)
    if upper in _WORD_OPERATORS:
        return _Token(_OPERATOR, _WORD_OPERATORS[upper], start, i)
    if upper in _CONSTANT_WORDS:
        return _Token(_CONSTANT, _CONSTANT_WORDS[upper], start, i)
    if upper in (_AND, _OR, _NOT):
        return _Token(upper, upper, start, i)

    path: list[str | int] = [word]
    while i < length:
        char = source[i]
        if char == ".":
            segment_start = i + 1
            i = segment_start
            while i < length and source[i] in _NAME_CHARS:
                i += 1
            if i == segment_start:
                raise ExpressionError("expected a key after '.'", segment_start)
            path.append(source[segment_start:i])
        elif char == "[":
            index_start = i + 1
            i = index_start
            while i < length and source[i] in _DIGITS:
                i += 1
            if i == index_start or i >= length or source[i] != "]":
                raise ExpressionError("expected an array index (digits) and ']'", index_start)
            path.append(int(source[index_start:i]))
            i += 1
        elif char == "-" and i + 1 < length and source[i + 1] in _NAME_CHARS:
            raise ExpressionError("hyphens are not allowed in names", i)
        else:
            break
    return _Token(_NAME, tuple(path), start, i)


# --- values and operators -------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is right
    if isinstance(left, str):
        return isinstance(right, str) and left == right
    if isinstance(left, bool):
        return isinstance(right, bool) and left is right
    if _is_number(left):
        return _is_number(right) and left == right
    return False


def _not_equal(left: Any, right: Any) -> bool:
    return _is_scalar(left) and _is_scalar(right) and not _equal(left, right)


def _orderable(left: Any, right: Any) -> bool:
    if isinstance(left, str):
        return isinstance(right, str)
    return _is_number(left) and _is_number(right)


def _less(left: Any, right: Any) -> bool:
    return _orderable(left, right) and left < right


def _less_equal(left: Any, right: Any) -> bool:
    return _orderable(left, right) and left <= right


def _greater(left: Any, right: Any) -> bool:
    return _orderable(left, right) and left > right


def _greater_equal(left: Any, right: Any) -> bool:
    return _orderable(left, right) and left >= right


def _contains(left: Any, right: Any) -> bool:
    return isinstance(left, str) and isinstance(right, str) and right in left


def _has(left: Any, right: Any) -> bool:
    if not _is_array(left):
        return False
    return any(_equal(element, right) for element in left)


def _in(left: Any, right: Any) -> bool:
    if not _is_array(right):
        return False
    return any(_equal(left, element) for element in right)


def _not_in(left: Any, right: Any) -> bool:
    if not _is_array(right) or not _is_scalar(left):
        return False
    return not any(_equal(left, element) for element in right)


_OPERATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "!=": _not_equal,
    "<": _less,
    "<=": _less_equal,
    ">": _greater,
    ">=": _greater_equal,
    "CONTAINS": _contains,
    "HAS": _has,
    "IN": _in,
    "NOT IN": _not_in,
}


# --- compiling to closures ------------------------------------------------------------------

Evaluator = Callable[[Any], bool]
Getter = Callable[[Any], Any]


def _always(context: Any) -> bool:
    return True


def _never(context: Any) -> bool:
    return False


def _resolver(path: tuple[str | int, ...]) -> Getter:
    """A function reading one name's value from a context; None where the path breaks."""
    if len(path) == 1:
        (key,) = path

        def resolve_key(context: Any) -> Any:
            if isinstance(context, (dict, Mapping)):
                return context.get(key)
            return None

        return resolve_key

    def resolve_path(context: Any) -> Any:
        value = context
        for step in path:
            if step.__class__ is int:
                if isinstance(value, (list, tuple)) and step < len(value):
                    value = value[step]
                else:
                    return None
            elif isinstance(value, (dict, Mapping)):
                value = value.get(step)
            else:
                return None
        return value

    return resolve_path


def _constant(value: Any) -> Getter:
    return lambda context: value


def _compile_comparison(operator: str, left: tuple, right: tuple) -> Evaluator:
    """left/right are ("constant", value) or ("name", path); constants fold at parse time."""
    operation = _OPERATIONS[operator]
    if left[0] == _CONSTANT and right[0] == _CONSTANT:
        return _always if operation(left[1], right[1]) else _never

    if left[0] == _NAME and right[0] == _CONSTANT:
        get = _resolver(left[1])
        constant = right[1]
        # The routing engine spends its time here: name == 'x', name HAS 'x', name IN [...].
        if operator == "==" and isinstance(constant, str):
            return lambda context: _string_equal(get(context), constant)
        if operator == "HAS" and isinstance(constant, str):
            return lambda context: _array_has_string(get(context), constant)
        if (
            operator == "IN"
            and _is_array(constant)
            and all(isinstance(element, str) for element in constant)
        ):
            choices = frozenset(constant)
            return lambda context: _string_in(get(context), choices)
        return lambda context: operation(get(context), constant)

    get_left = _resolver(left[1]) if left[0] == _NAME else _constant(left[1])
    get_right = _resolver(right[1]) if right[0] == _NAME else _constant(right[1])
    return lambda context: operation(get_left(context), get_right(context))


def _string_equal(value: Any, constant: str) -> bool:
    return isinstance(value, str) and value == constant


def _array_has_string(value: Any, constant: str) -> bool:
    # Only a string can equal a string, so the list's own membership test is exact here.
    return isinstance(value, (list, tuple)) and constant in value


def _string_in(value: Any, choices: frozenset[str]) -> bool:
    return isinstance(value, str) and value in choices


def _compile_all(parts: list[Evaluator]) -> Evaluator:
    if _never in parts:
        return _never
    parts = [part for part in parts if part is not _always]
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda context: first(context) and second(context)
    conjuncts = tuple(parts)

    def all_of(context: Any) -> bool:
        return all(part(context) for part in conjuncts)

    return all_of


def _compile_any(parts: list[Evaluator]) -> Evaluator:
    if _always in parts:
        return _always
    parts = [part for part in parts if part is not _never]
    if not parts:
        return _never
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda context: first(context) or second(context)
    disjuncts = tuple(parts)

    def any_of(context: Any) -> bool:
        return any(part(context) for part in disjuncts)

    return any_of


# --- parsing --------------------------------------------------------------------------------


def _describe(source: str, token: _Token) -> str:
    text = source[token.position : token.end]
    if len(text) > 30:
        text = text[:27] + "..."
    return repr(text)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0
        self.depth = 0
        self.roots: set[str] = set()

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, expected: str, token: _Token) -> ExpressionError:
        if token.kind == _END:
            return ExpressionError(expected, token.position)
        return ExpressionError(f"{expected}, found {_describe(self.source, token)}", token.position)

    def parse(self) -> Evaluator:
        if self.peek().kind == _END:
            raise ExpressionError("the expression is empty", 0)
        evaluator = self.expression()
        token = self.peek()
        if token.kind == _CLOSE:
            raise ExpressionError("unexpected ')' without a matching '('", token.position)
        if token.kind != _END:
            raise self.error("expected AND, OR or the end of the expression", token)
        return evaluator

    def expression(self) -> Evaluator:
        parts = [self.conjunction()]
        while self.peek().kind == _OR:
            keyword = self.advance()
            parts.append(self.conjunction(after=keyword))
        return _compile_any(parts)

    def conjunction(self, after: _Token | None = None) -> Evaluator:
        parts = [self.group(after)]
        while self.peek().kind == _AND:
            keyword = self.advance()
            parts.append(self.group(after=keyword))
        return _compile_all(parts)

    def group(self, after: _Token | None) -> Evaluator:
        token = self.peek()
        if token.kind != _OPEN:
            return self.comparison(after)
        self.advance()
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise ExpressionError(
                f"parentheses nest deeper than {MAX_NESTING_DEPTH} levels", token.position
            )
        evaluator = self.expression()
        closing = self.peek()
        if closing.kind != _CLOSE:
            raise self.error(
                f"expected ')' to close the '(' opened at position {token.position}", closing
            )
        self.advance()
        self.depth -= 1
        return evaluator

    def comparison(self, after: _Token | None) -> Evaluator:
        if after is None:
            expected = "expected a comparison"
        else:
            expected = f"expected a comparison after {_describe(self.source, after)}"
        left_token = self.peek()
        left = self.operand(expected)
        operator_token = self.peek()
        if operator_token.kind == _NOT:
            self.advance()
            in_token = self.peek()
            if not (in_token.kind == _OPERATOR and in_token.value == "IN"):
                raise self.error("expected IN after NOT", in_token)
            self.advance()
            operator = "NOT IN"
        elif operator_token.kind == _OPERATOR:
            self.advance()
            operator = operator_token.value
        else:
            operand_text = self.source[left_token.position : self.tokens[self.index - 1].end]
            if len(operand_text) > 30:
                operand_text = operand_text[:27] + "..."
            raise self.error(
                f"expected a comparison operator after {operand_text!r}", operator_token
            )
        operator_text = self.source[operator_token.position : self.tokens[self.index - 1].end]
        right = self.operand(f"expected a value after {operator_text!r}")
        return _compile_comparison(operator, left, right)

    def operand(self, expected: str) -> tuple:
        token = self.peek()
        if token.kind == _CONSTANT:
            self.advance()
            return (_CONSTANT, token.value)
        if token.kind == _NAME:
            self.advance()
            self.roots.add(token.value[0])
            return (_NAME, token.value)
        if token.kind == _OPEN_BRACKET:
            return (_CONSTANT, self.array())
        raise self.error(expected, token)

    def array(self) -> tuple:
        opening = self.advance()
        elements: list[Any] = []
        if self.peek().kind == _CLOSE_BRACKET:
            self.advance()
            return ()
        while True:
            token = self.peek()
            if token.kind != _CONSTANT:
                after = "'['" if not elements else "','"
                raise self.error(f"expected a constant after {after} in the array", token)
            self.advance()
            elements.append(token.value)
            token = self.advance()
            if token.kind == _CLOSE_BRACKET:
                return tuple(elements)
            if token.kind != _COMMA:
                raise self.error(
                    f"expected ',' or ']' in the array opened at position {opening.position}",
                    token,
                )


# --- the public interface -------------------------------------------------------------------


class Expression:
    """A parsed expression; immutable, so one instance can be shared through the cache."""

    __slots__ = ("_evaluator", "roots", "source")

    source: str
    roots: frozenset[str]

    def __init__(self, source: str, roots: frozenset[str], evaluator: Evaluator) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "roots", roots)
        object.__setattr__(self, "_evaluator", evaluator)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Expression is immutable")

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True when the expression holds for these attributes; wrong types compare false."""
        return self._evaluator(context)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def parse(source: str) -> Expression:
    """Parse an expression, raising ExpressionError (and nothing else) when it is invalid."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {type(source).__name__}", 0)
    return _parse_cached(source)


# Room for every expression of a workspace at TaskRouter's published limits (5,000 task
# queues, and the workflows' filters and targets beside them): a worker's membership is
# recomputed against every queue's target_workers on each create or attributes update, so a
# cache smaller than the queues would miss on every one of them (measured: creating a worker
# took 6 ms with 1,000 queues and 94 ms with 2,000 at 1,024 entries). An entry is about 2 KB.
PARSE_CACHE_SIZE = 16_384


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(source: str) -> Expression:
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"the expression is longer than {MAX_SOURCE_LENGTH} characters", MAX_SOURCE_LENGTH
        )
    parser = _Parser(source)
    evaluator = parser.parse()
    return Expression(source, frozenset(parser.roots), evaluator)
