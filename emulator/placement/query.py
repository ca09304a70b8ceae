"""ECS cluster query language: compile `memberOf` / `--filter` expressions once, match instances fast.

Pure module (standard library only). `compile_expression` parses the text a
single time into nested closures; `Expression.matches` then runs them against
anything shaped like `InstanceFacts`, with no parsing and no regex compiling
at match time, because placement calls it for every (task, instance) pair.

Regexes follow Java `String.matches()`, i.e. a full match; they are compiled
with Python's `re`, so Java-only syntax (e.g. `\\p{Alpha}`) is a syntax error.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Mapping, NoReturn, Protocol

MAX_EXPRESSION_LENGTH = 2000  # AWS's limit for a memberOf expression
_MAX_DEPTH = 64  # bounds recursion for inputs like "!!!!..." or "((((..."
_MEMO_LIMIT = 4096  # per regex; bounds memory if values are unbounded (e.g. instance ids)


class QuerySyntaxError(ValueError):
    """An expression that AWS would reject; `position` is a 0-based character offset."""

    def __init__(self, reason: str, position: int, expression: str = "") -> None:
        super().__init__(f"Invalid placement expression: {reason} at position {position}")
        self.reason = reason
        self.position = position
        self.expression = expression


class InstanceFacts(Protocol):
    """What an expression can look at; model classes satisfy it by duck typing."""

    ec2_instance_id: str
    agent_connected: bool
    agent_version: str
    registered_at: float
    running_tasks_count: int
    attributes: Mapping[str, str | None]
    task_groups: Collection[str]


Predicate = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression; `dynamic` means results change as tasks are placed."""

    text: str
    dynamic: bool
    _predicate: Predicate = field(repr=False, compare=False)

    def matches(self, facts: InstanceFacts) -> bool:
        return self._predicate(facts)


@functools.lru_cache(maxsize=1024)
def compile_expression(text: str) -> Expression:
    """Parse `text` once (cached); raises QuerySyntaxError."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise QuerySyntaxError(
            f"expression is {len(text)} characters long, over the limit of "
            f"{MAX_EXPRESSION_LENGTH}", MAX_EXPRESSION_LENGTH, text)
    parser = _Parser(text)
    predicate = parser.parse()
    return Expression(text, parser.dynamic, predicate)


# --- operators -------------------------------------------------------------

_WORD_OPERATORS = {
    "equals": "==", "not_equals": "!=", "greater_than": ">",
    "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<=",
    "exists": "exists", "not_exists": "!exists", "in": "in", "not_in": "!in",
    "matches": "=~", "not_matches": "!~",
}
# Longer symbols first so ">=" is not read as ">" followed by "=".
_SYMBOL_OPERATORS = ("!exists", "!in", "==", "!=", ">=", "<=", "=~", "!~", ">", "<")
_ORDERING = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_NEGATION = {"!=": "==", "!in": "in", "!~": "=~", "!exists": "exists"}
_NO_ARGUMENT = frozenset({"exists", "!exists"})
_LIST = frozenset({"in", "!in"})
_REGEX = frozenset({"=~", "!~"})
_STRING_OPS = frozenset({"==", "!=", "in", "!in", "=~", "!~"})
_SCALAR_OPS = frozenset({"==", "!=", ">", ">=", "<", "<=", "in", "!in"})
_ALL_OPS = _STRING_OPS | _SCALAR_OPS | _NO_ARGUMENT


def _chain(predicates: list[Predicate], *, any_of: bool) -> Predicate:
    """and (any_of=False) / or (any_of=True), short-circuiting; a loop keeps long chains shallow."""
    if len(predicates) == 1:
        return predicates[0]
    chain = tuple(predicates)

    def chained(facts: Any) -> bool:
        for predicate in chain:
            if bool(predicate(facts)) is any_of:
                return any_of
        return not any_of
    return chained


# --- argument conversion (compile time) ------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})?)?")
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_LEADING_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_/.\-]{1,128}")


def _as_text(raw: str) -> str:
    return raw


def _as_bool_text(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"agentConnected compares against true or false, not '{raw}'")
    return lowered


def _as_date(raw: str) -> int:
    if _DATE.fullmatch(raw):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            pass  # shaped like a date but not one, e.g. month 13
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return int(moment.timestamp())
    raise ValueError(f"bad date '{raw}' for registeredAt (use 2018-06-18, "
                     "2018-06-18T22:28:28, or that ending in Z or +00:00)")


def _version_tuple(dotted: str) -> tuple[int, ...]:
    parts = [int(part) for part in dotted.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # so 1.9 == 1.9.0, as a person reading versions expects
    return tuple(parts)


def _checked(pattern: re.Pattern[str], parse: Callable[[str], Any], complaint: str) -> Callable[[str], Any]:
    def convert(raw: str) -> Any:
        if pattern.fullmatch(raw):
            return parse(raw)
        raise ValueError(complaint.format(raw))
    return convert


_as_version = _checked(_VERSION, _version_tuple,
                       "bad version '{}' for agentVersion (use digits and dots, e.g. 1.14.5)")
_as_integer = _checked(_INTEGER, int, "bad number '{}' for runningTasksCount (use a whole number)")


@functools.lru_cache(maxsize=256)
def _instance_version(text: str) -> tuple[int, ...] | None:
    # Lenient on the instance side ("1.51.0-dev" counts as 1.51): an odd agent
    # string should fail the comparison, not the placement.
    found = _LEADING_VERSION.match(text)
    return _version_tuple(found.group(1)) if found else None


@functools.lru_cache(maxsize=4096)
def _number(text: str) -> float | None:
    return float(text) if _NUMBER.fullmatch(text) else None


# --- predicate builders ----------------------------------------------------

def _value_test(op: str, arg: Any) -> Callable[[str | None], bool]:
    """Test one string value; None (attribute present without a value) equals nothing."""
    if op == "==":
        return lambda value: value == arg
    if op == "!=":
        return lambda value: value != arg
    if op == "in":
        return lambda value: value in arg
    if op == "!in":
        return lambda value: value not in arg
    if op in _REGEX:
        return _regex_test(arg.fullmatch, wanted=op == "=~")
    if op in _ORDERING:
        return _ordering_test(_ORDERING[op], arg)
    present = op == "exists"
    return lambda value: present


def _regex_test(fullmatch: Callable[[str], Any], wanted: bool) -> Callable[[str | None], bool]:
    # Instances share few distinct values (instance types, AZs, groups), and a
    # dict hit is several times cheaper than running the regex again.
    memo: dict[str, bool] = {}

    def regex_holds(value: str | None) -> bool:
        if value is None:
            return not wanted
        hit = memo.get(value)
        if hit is None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            hit = memo[value] = (fullmatch(value) is not None) is wanted
        return hit
    return regex_holds


def _ordering_test(compare: Callable[[Any, Any], bool], arg: str) -> Callable[[str | None], bool]:
    arg_number = _number(arg)

    def ordered(value: str | None) -> bool:
        if value is None:
            return False
        if arg_number is not None:
            number = _number(value)
            if number is not None:
                return compare(number, arg_number)
        return compare(value, arg)  # either side is not a number: compare as strings
    return ordered


def _build_agent_connected(op: str, arg: Any) -> Predicate:
    test = _value_test(op, arg)
    when_connected, when_disconnected = test("true"), test("false")
    return lambda facts: when_connected if facts.agent_connected else when_disconnected


def _build_instance_id(op: str, arg: Any) -> Predicate:
    if op == "==":
        return lambda facts: facts.ec2_instance_id == arg
    test = _value_test(op, arg)
    return lambda facts: test(facts.ec2_instance_id)


def _build_task_group(op: str, arg: Any) -> Predicate:
    if op in _NEGATION:  # "no group matches", not "some group differs"
        positive = _build_task_group(_NEGATION[op], arg)
        return lambda facts: not positive(facts)
    if op == "exists":
        return lambda facts: len(facts.task_groups) > 0
    if op == "==":
        return lambda facts: arg in facts.task_groups
    test = _value_test(op, arg)

    def any_group(facts: Any) -> bool:
        for group in facts.task_groups:
            if test(group):
                return True
        return False
    return any_group


_MISSING = object()


def _attribute_builder(name: str) -> Callable[[str, Any], Predicate]:
    def build(op: str, arg: Any) -> Predicate:
        test = _value_test(op, arg)
        # A missing attribute satisfies only `!exists`. Even `!=`, `!in` and
        # `!~` are false, so `attribute:x != v` selects instances that HAVE x
        # with another value, which is how placement constraints are used.
        when_missing = op == "!exists"

        def attribute_holds(facts: Any) -> bool:
            value = facts.attributes.get(name, _MISSING)
            return when_missing if value is _MISSING else test(value)
        return attribute_holds
    return build


def _scalar_builder(key: Callable[[Any], Any]) -> Callable[[str, Any], Predicate]:
    """Typed subjects; a key of None (unparseable instance value) fails every test."""
    def build(op: str, arg: Any) -> Predicate:
        if op == "==":
            return lambda facts: key(facts) == arg
        if op == "in":
            return lambda facts: key(facts) in arg
        if op == "!in":
            compare: Callable[[Any, Any], bool] = lambda k, items: k not in items
        else:
            compare = operator.ne if op == "!=" else _ORDERING[op]

        def holds(facts: Any) -> bool:
            k = key(facts)
            return k is not None and compare(k, arg)
        return holds
    return build


@dataclass(frozen=True)
class _Subject:
    name: str
    ops: frozenset[str]
    convert: Callable[[str], Any]  # argument text -> comparable value; raises ValueError
    build: Callable[[str, Any], Predicate]
    dynamic: bool = False


_SUBJECTS = {s.name: s for s in (
    _Subject("agentConnected", _STRING_OPS, _as_bool_text, _build_agent_connected),
    _Subject("ec2InstanceId", _STRING_OPS, _as_text, _build_instance_id),
    _Subject("agentVersion", _SCALAR_OPS, _as_version,
             _scalar_builder(lambda facts: _instance_version(facts.agent_version))),
    # Dates in the language have whole-second precision, so instances compare on whole seconds.
    _Subject("registeredAt", _SCALAR_OPS, _as_date,
             _scalar_builder(lambda facts: int(facts.registered_at))),
    _Subject("runningTasksCount", _SCALAR_OPS, _as_integer,
             _scalar_builder(operator.attrgetter("running_tasks_count")), dynamic=True),
    _Subject("task:group", _STRING_OPS | _NO_ARGUMENT, _as_text, _build_task_group, dynamic=True),
)}


# --- parser ------------------------------------------------------------------

_SPACE = re.compile(r"\s*")
_SUBJECT_WORD = re.compile(r"[^\s()\[\],'\"=!<>~&|]+")
_OPERATOR_WORD = re.compile(r"[A-Za-z_]+")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_TOKEN = re.compile(r"[^\s()\[\],]+")  # only to quote the offending text in messages


class _Parser:
    """Recursive descent straight over the text: OR < AND < NOT < comparison."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.depth, self.dynamic = text, 0, 0, False

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise QuerySyntaxError(reason, self.pos if position is None else position, self.text)

    def read(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if not found:
            return None
        self.pos = found.end()
        return found.group()

    def skip_space(self) -> int:
        self.read(_SPACE)
        return self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def char(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def token(self) -> str:
        """The offending text at the cursor, for messages."""
        found = _TOKEN.match(self.text, self.pos)
        return found.group() if found else self.char()

    def at_word(self, word: str) -> bool:
        following = self.text[self.pos + len(word):self.pos + len(word) + 1]
        return self.text.startswith(word, self.pos) and not (following.isalnum() or following == "_")

    def at_connective(self) -> bool:
        return (self.text.startswith(("&&", "||"), self.pos)
                or self.at_word("and") or self.at_word("or"))

    def at_condition_end(self) -> bool:
        return self.at_end() or self.char() == ")" or self.at_connective()

    def take_connective(self, word: str, symbol: str) -> bool:
        self.skip_space()
        for written in (symbol, word):
            if self.at_word(written) if written.isalpha() else self.text.startswith(written, self.pos):
                self.pos += len(written)
                return True
        return False

    def nest(self, delta: int, at: int) -> None:
        self.depth += delta
        if self.depth > _MAX_DEPTH:
            self.fail(f"parentheses and 'not' nest more than {_MAX_DEPTH} deep", at)

    def fail_unexpected(self, expected: str) -> NoReturn:
        if self.char() == ")":
            self.fail("unbalanced parentheses: ')' has no matching '('")
        if self.char() == "]":
            self.fail("unbalanced brackets: ']' has no matching '['")
        self.fail(f"unexpected '{self.token()}', expected 'and', 'or' or {expected}")

    def parse(self) -> Predicate:
        if self.skip_space() >= len(self.text):
            self.fail("expression is empty", 0)
        predicate = self.parse_or()
        if self.skip_space() < len(self.text):
            self.fail_unexpected("the end of the expression")
        return predicate

    def parse_or(self) -> Predicate:
        operands = [self.parse_and()]
        while self.take_connective("or", "||"):
            operands.append(self.parse_and())
        return _chain(operands, any_of=True)

    def parse_and(self) -> Predicate:
        operands = [self.parse_unary()]
        while self.take_connective("and", "&&"):
            operands.append(self.parse_unary())
        return _chain(operands, any_of=False)

    def parse_unary(self) -> Predicate:
        self.skip_space()
        if self.char() == "!" or self.at_word("not"):
            start = self.pos
            self.pos += 1 if self.char() == "!" else 3
            self.nest(1, start)
            operand = self.parse_unary()
            self.nest(-1, start)
            return lambda facts: not operand(facts)
        return self.parse_primary()

    def parse_primary(self) -> Predicate:
        if self.at_end():
            self.fail("expression ends where a condition was expected")
        if self.char() != "(":
            return self.parse_comparison()
        opened = self.pos
        self.pos += 1
        self.nest(1, opened)
        inner = self.parse_or()
        self.nest(-1, opened)
        if self.skip_space() >= len(self.text):
            self.fail("unbalanced parentheses: '(' is never closed", opened)
        if self.char() != ")":
            self.fail_unexpected("')'")
        self.pos += 1
        return inner

    def parse_comparison(self) -> Predicate:
        subject = self.parse_subject()
        op_pos = self.skip_space()
        op, written = self.parse_operator(subject)
        if op not in subject.ops:
            self.fail(f"operator '{written}' is not allowed for subject '{subject.name}'", op_pos)
        argument = self.parse_argument(subject, op, written)
        self.dynamic = self.dynamic or subject.dynamic
        return subject.build(op, argument)

    def parse_subject(self) -> _Subject:
        start = self.pos
        word = None if self.at_connective() else self.read(_SUBJECT_WORD)
        if word is None:
            self.fail(f"expected a condition, found '{self.token()}'")
        if word.startswith("attribute:"):
            name = word[len("attribute:"):]
            if not _ATTRIBUTE_NAME.fullmatch(name):
                self.fail(f"bad attribute name '{name}' (1-128 letters, digits, "
                          "'-', '_', '/' or '.')", start)
            return _Subject(word, _ALL_OPS, _as_text, _attribute_builder(name))
        if word not in _SUBJECTS:
            self.fail(f"unknown subject '{word}'", start)
        return _SUBJECTS[word]

    def parse_operator(self, subject: _Subject) -> tuple[str, str]:
        if self.at_condition_end():
            self.fail(f"missing operator after subject '{subject.name}'")
        for symbol in _SYMBOL_OPERATORS:  # "!in"/"!exists" must end as words ("!inside" is not "!in")
            if self.at_word(symbol) if symbol[-1].isalpha() else self.text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol, symbol
        word = _OPERATOR_WORD.match(self.text, self.pos)
        if word and word.group() in _WORD_OPERATORS and self.at_word(word.group()):
            self.pos = word.end()
            return _WORD_OPERATORS[word.group()], word.group()
        self.fail(f"unknown operator '{self.token()}'")

    def parse_argument(self, subject: _Subject, op: str, written: str) -> Any:
        self.skip_space()
        if op in _NO_ARGUMENT:
            if not self.at_condition_end():
                self.fail(f"operator '{written}' takes no argument, found '{self.token()}'")
            return None
        if op in _LIST:
            return frozenset(self.convert(subject, raw, at) for raw, at in self.parse_list(written))
        at = self.pos
        if self.at_end() or self.char() in ")]," or self.at_connective():
            self.fail(f"missing argument after operator '{written}'")
        if self.char() == "[" and op not in _REGEX:  # a regex may open with a class
            self.fail(f"operator '{written}' takes one value, not a list")
        raw = self.parse_word(grouped=True)
        if op not in _REGEX:
            return self.convert(subject, raw, at)
        try:
            return re.compile(raw)
        except re.error as error:
            self.fail(f"bad regular expression '{raw}': {error.msg}", at)

    def convert(self, subject: _Subject, raw: str, at: int) -> Any:
        try:
            return subject.convert(raw)
        except ValueError as error:
            self.fail(str(error), at)

    def parse_word(self, grouped: bool) -> str:
        """A quoted string (no escapes: values never hold quotes) or a bare word."""
        if self.char() not in ("'", '"'):
            start, self.pos = self.pos, self.bare_end(grouped)
            return self.text[start:self.pos]
        start = self.pos
        end = self.text.find(self.text[start], start + 1)
        if end < 0:
            self.fail("unterminated quoted string", start)
        self.pos = end + 1
        return self.text[start + 1:end]

    def bare_end(self, grouped: bool) -> int:
        """Bare words end at whitespace, ')', ']', ',', '&&' or '||' (so "a==b&&c==d" splits;
        a lone '|' stays for regexes like "a|b"). With `grouped`, (), [] and {} nest,
        so a bare regex like t[23].* or (a|b){1,2} needs no quotes."""
        text, end, pending = self.text, self.pos, []
        while end < len(text) and not text[end].isspace():
            char = text[end]
            if pending and char == pending[-1]:
                pending.pop()
            elif not pending and (char in ")]," or text.startswith(("&&", "||"), end)):
                break
            elif grouped and char in _CLOSERS:
                pending.append(_CLOSERS[char])
            end += 1
        return end

    def parse_list(self, written: str) -> list[tuple[str, int]]:
        if self.char() != "[":
            self.fail(f"operator '{written}' needs a list like [a, b]")
        opened = self.pos
        self.pos += 1
        if self.skip_space() < len(self.text) and self.char() == "]":
            self.fail(f"empty list after operator '{written}'")
        items = []
        while True:
            at = self.skip_space()
            if not self.at_end() and self.char() in ",)]":
                self.fail("missing list item")
            items.append((self.parse_word(grouped=False), at))
            if self.skip_space() >= len(self.text) or self.char() == ")":
                self.fail("unbalanced brackets: '[' is never closed", opened)
            separator = self.char()
            if separator not in ",]":
                self.fail(f"expected ',' or ']' in the list, found '{self.token()}'")
            self.pos += 1
            if separator == "]":
                return items
