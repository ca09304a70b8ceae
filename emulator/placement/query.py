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
import re
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping, NoReturn, Protocol

from .query_terms import (
    Predicate,
    _ALL_OPS,
    _ATTRIBUTE_NAME,
    _LIST,
    _NO_ARGUMENT,
    _REGEX,
    _SUBJECTS,
    _SYMBOL_OPERATORS,
    _Subject,
    _WORD_OPERATORS,
    _as_text,
    _attribute_builder,
    _chain,
)

MAX_EXPRESSION_LENGTH = 2000  # AWS's limit for a memberOf expression
_MAX_DEPTH = 64  # bounds recursion for inputs like "!!!!..." or "((((..."


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
