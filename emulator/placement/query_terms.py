"""The terms of the cluster query language: its subjects, operators, and the predicates they compile to.

`query.py` parses; this module knows what each subject may be compared
with and builds the closure that answers a comparison for one instance,
converting arguments (dates, versions, numbers, regexes) at compile time
so matching does no parsing.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

Predicate = Callable[[Any], bool]
_MEMO_LIMIT = 4096  # per regex; bounds memory if values are unbounded (e.g. instance ids)


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
