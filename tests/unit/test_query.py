"""Table tests for the ECS cluster query language (emulator.placement.query)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Mapping

import pytest

from emulator.placement.query import (
    MAX_EXPRESSION_LENGTH,
    Expression,
    QuerySyntaxError,
    compile_expression,
)

REGISTERED = datetime(2018, 6, 18, 22, 28, 28, tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class Facts:
    """A container instance as the query language sees it (InstanceFacts)."""

    ec2_instance_id: str = "i-0abc"
    agent_connected: bool = True
    agent_version: str = "1.51.0"
    registered_at: float = REGISTERED
    running_tasks_count: int = 3
    attributes: Mapping[str, str | None] = field(default_factory=lambda: {
        "ecs.instance-type": "t2.small",
        "ecs.availability-zone": "us-east-1a",
        "ecs.os-type": "linux",
        "memory_gb": "16",
        "label": "blue team",
        "gpu": None,  # present without a value
    })
    task_groups: frozenset[str] = frozenset({"service:web", "family:db"})


BASE = Facts()


def facts(**changes: object) -> Facts:
    return replace(BASE, **changes)


def having(attributes: Mapping[str, str | None]) -> Facts:
    return replace(BASE, attributes={**BASE.attributes, **attributes})


def without(*names: str) -> Facts:
    return replace(BASE, attributes={k: v for k, v in BASE.attributes.items() if k not in names})


def groups(*names: str) -> Facts:
    return replace(BASE, task_groups=frozenset(names))


def table(names: str, rows: list[tuple]) -> pytest.MarkDecorator:
    """Rows are (id, *values); the id names the case in pytest's output."""
    return pytest.mark.parametrize(names, [row[1:] for row in rows], ids=[row[0] for row in rows])


OFF = facts(agent_connected=False)
G2_1B = having({"ecs.instance-type": "g2.2xlarge", "ecs.availability-zone": "us-east-1b"})
G2_1D = having({"ecs.instance-type": "g2.2xlarge", "ecs.availability-zone": "us-east-1d"})
T2_1B = having({"ecs.availability-zone": "us-east-1b"})
OLD_AGENT = facts(agent_version="1.9.0")

# Every example from ecs-semantics.md 1.4, verbatim, each seen true and false.
SPEC_EXAMPLES = [
    ("type-eq/t2", "attribute:ecs.instance-type == t2.small", BASE, True),
    ("type-eq/g2", "attribute:ecs.instance-type == t2.small", G2_1B, False),
    ("az-in/1a", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", BASE, True),
    ("az-in/1b", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", T2_1B, True),
    ("az-in/1d", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", G2_1D, False),
    ("g2-not-1d/g2-1b", "attribute:ecs.instance-type =~ g2.* and "
     "attribute:ecs.availability-zone != us-east-1d", G2_1B, True),
    ("g2-not-1d/g2-1d", "attribute:ecs.instance-type =~ g2.* and "
     "attribute:ecs.availability-zone != us-east-1d", G2_1D, False),
    ("g2-not-1d/t2-1b", "attribute:ecs.instance-type =~ g2.* and "
     "attribute:ecs.availability-zone != us-east-1d", T2_1B, False),
    ("not-database/web", "not(task:group == database)", BASE, True),
    ("not-database/db", "not(task:group == database)", groups("database", "service:web"), False),
    ("agent-old/1.9", "agentVersion < 1.14.5", OLD_AGENT, True),
    ("agent-old/1.51", "agentVersion < 1.14.5", BASE, False),
    ("registered/2017", "registeredAt < 2018-02-13",
     facts(registered_at=datetime(2017, 12, 31, tzinfo=timezone.utc).timestamp()), True),
    ("registered/2018-06", "registeredAt < 2018-02-13", BASE, False),
    ("quoted-ids/i-a", "ec2InstanceId in ['i-a','i-b']", facts(ec2_instance_id="i-a"), True),
    ("quoted-ids/other", "ec2InstanceId in ['i-a','i-b']", BASE, False),
]

SUBJECTS = [
    # agentConnected
    ("connected-eq/on", "agentConnected == true", BASE, True),
    ("connected-eq/off", "agentConnected == true", OFF, False),
    ("connected-equals-false/off", "agentConnected equals false", OFF, True),
    ("connected-equals-false/on", "agentConnected equals false", BASE, False),
    ("connected-ne/on", "agentConnected != true", BASE, False),
    ("connected-not-equals/off", "agentConnected not_equals true", OFF, True),
    ("connected-in/on", "agentConnected in [true]", BASE, True),
    ("connected-in/off", "agentConnected in [true]", OFF, False),
    ("connected-!in/off", "agentConnected !in [true]", OFF, True),
    ("connected-not-in/on", "agentConnected not_in [false]", BASE, True),
    ("connected-regex/on", "agentConnected =~ t.*", BASE, True),
    ("connected-regex/off", "agentConnected =~ t.*", OFF, False),
    ("connected-matches/off", "agentConnected matches f.*", OFF, True),
    ("connected-!~/off", "agentConnected !~ t.*", OFF, True),
    ("connected-not-matches/on", "agentConnected not_matches t.*", BASE, False),
    ("connected-uppercase", "agentConnected == TRUE", BASE, True),
    # ec2InstanceId
    ("id-eq/same", "ec2InstanceId == i-0abc", BASE, True),
    ("id-eq/other", "ec2InstanceId == i-0abd", BASE, False),
    ("id-equals", "ec2InstanceId equals i-0abc", BASE, True),
    ("id-ne/same", "ec2InstanceId != i-0abc", BASE, False),
    ("id-not-equals/other", "ec2InstanceId not_equals i-9", BASE, True),
    ("id-in-mixed-quotes", "ec2InstanceId in [i-9, \"i-0abc\"]", BASE, True),
    ("id-!in/listed", "ec2InstanceId !in [i-9, 'i-0abc']", BASE, False),
    ("id-not-in/unlisted", "ec2InstanceId not_in [i-9]", BASE, True),
    ("id-regex/full", "ec2InstanceId =~ i-0a.*", BASE, True),
    ("id-regex/prefix-only", "ec2InstanceId =~ i-0a", BASE, False),
    ("id-matches", "ec2InstanceId matches 'i-[0-9a-f]+'", BASE, True),
    ("id-!~", "ec2InstanceId !~ i-9.*", BASE, True),
    ("id-not-matches", "ec2InstanceId not_matches i-0.*", BASE, False),
    # agentVersion, compared as versions, not strings
    ("version-lt-word", "agentVersion less_than 1.14.5", OLD_AGENT, True),
    ("version-14-not-below-9", "agentVersion < 1.9", facts(agent_version="1.14.5"), False),
    ("version-14-above-9", "agentVersion > 1.9", facts(agent_version="1.14.5"), True),
    ("version-greater-than", "agentVersion greater_than 1.50.9", BASE, True),
    ("version-ge/equal", "agentVersion >= 1.51.0", BASE, True),
    ("version-ge/below", "agentVersion greater_than_equal 1.52", BASE, False),
    ("version-le/equal", "agentVersion <= 1.51", BASE, True),
    ("version-le-word/above", "agentVersion less_than_equal 1.50", BASE, False),
    ("version-eq-trailing-zero", "agentVersion == 1.51", BASE, True),
    ("version-equals/other", "agentVersion equals 1.5.1", BASE, False),
    ("version-ne", "agentVersion != 1.50.0", BASE, True),
    ("version-not-equals/same", "agentVersion not_equals 1.51.0", BASE, False),
    ("version-in", "agentVersion in [1.9, 1.51.0]", BASE, True),
    ("version-!in", "agentVersion !in [1.9, 1.51.0]", BASE, False),
    ("version-not-in", "agentVersion not_in [1.9]", BASE, True),
    ("version-instance-suffix", "agentVersion == 1.51", facts(agent_version="1.51.0-dev"), True),
    ("version-instance-garbage/ne", "agentVersion != 1.0", facts(agent_version="unknown"), False),
    ("version-instance-garbage/lt", "agentVersion < 99", facts(agent_version="unknown"), False),
    # registeredAt, in all four date forms
    ("date-offset", "registeredAt == 2018-06-18T22:28:28+00:00", BASE, True),
    ("date-z", "registeredAt == 2018-06-18T22:28:28Z", BASE, True),
    ("date-no-zone-is-utc", "registeredAt == 2018-06-18T22:28:28", BASE, True),
    ("date-only-is-midnight/after", "registeredAt > 2018-06-18", BASE, True),
    ("date-only-is-midnight/before", "registeredAt < 2018-06-18", BASE, False),
    ("date-only/next-day", "registeredAt < 2018-06-19", BASE, True),
    ("date-other-offset", "registeredAt == 2018-06-18T23:28:28+01:00", BASE, True),
    ("date-whole-seconds", "registeredAt == 2018-06-18T22:28:28Z",
     facts(registered_at=REGISTERED + 0.7), True),
    ("date-equals/other", "registeredAt equals 2018-06-18T22:28:29Z", BASE, False),
    ("date-ne", "registeredAt != 2018-06-18T22:28:29Z", BASE, True),
    ("date-not-equals/same", "registeredAt not_equals 2018-06-18T22:28:28Z", BASE, False),
    ("date-gt/same", "registeredAt > 2018-06-18T22:28:28Z", BASE, False),
    ("date-greater-than", "registeredAt greater_than 2018-06-18T22:28:27Z", BASE, True),
    ("date-ge", "registeredAt >= 2018-06-18T22:28:28Z", BASE, True),
    ("date-greater-than-equal", "registeredAt greater_than_equal 2018-06-18T22:28:29Z", BASE, False),
    ("date-le", "registeredAt <= 2018-06-18T22:28:28Z", BASE, True),
    ("date-less-than-equal", "registeredAt less_than_equal 2018-06-18T22:28:27Z", BASE, False),
    ("date-lt/same", "registeredAt < 2018-06-18T22:28:28Z", BASE, False),
    ("date-less-than", "registeredAt less_than 2018-06-18T22:28:29Z", BASE, True),
    ("date-in", "registeredAt in [2017-01-01, 2018-06-18T22:28:28Z]", BASE, True),
    ("date-!in", "registeredAt !in [2017-01-01, 2018-06-18T22:28:28Z]", BASE, False),
    ("date-not-in", "registeredAt not_in [2017-01-01]", BASE, True),
    # runningTasksCount
    ("count-eq", "runningTasksCount == 3", BASE, True),
    ("count-equals/other", "runningTasksCount equals 4", BASE, False),
    ("count-ne", "runningTasksCount != 3", BASE, False),
    ("count-not-equals", "runningTasksCount not_equals 0", BASE, True),
    ("count-gt", "runningTasksCount > 2", BASE, True),
    ("count-greater-than/same", "runningTasksCount greater_than 3", BASE, False),
    ("count-ge", "runningTasksCount >= 3", BASE, True),
    ("count-greater-than-equal", "runningTasksCount greater_than_equal 4", BASE, False),
    ("count-lt", "runningTasksCount < 3", BASE, False),
    ("count-less-than/idle", "runningTasksCount less_than 1", facts(running_tasks_count=0), True),
    ("count-le", "runningTasksCount <= 3", BASE, True),
    ("count-less-than-equal", "runningTasksCount less_than_equal 2", BASE, False),
    ("count-in", "runningTasksCount in [0, 3]", BASE, True),
    ("count-!in", "runningTasksCount !in [0, 3]", BASE, False),
    ("count-not-in", "runningTasksCount not_in [0]", BASE, True),
    # attribute:<name>
    ("attr-eq-quoted-single", "attribute:ecs.instance-type == 't2.small'", BASE, True),
    ("attr-eq-quoted-double", 'attribute:ecs.instance-type == "t2.small"', BASE, True),
    ("attr-eq-space-in-value", 'attribute:label == "blue team"', BASE, True),
    ("attr-equals/other", "attribute:ecs.os-type equals windows", BASE, False),
    ("attr-ne/other-value", "attribute:ecs.os-type != windows", BASE, True),
    ("attr-not-equals/same", "attribute:ecs.os-type not_equals linux", BASE, False),
    ("attr-exists", "attribute:ecs.os-type exists", BASE, True),
    ("attr-!exists/present", "attribute:ecs.os-type !exists", BASE, False),
    ("attr-not-exists/missing", "attribute:team not_exists", BASE, True),
    ("attr-in-no-spaces", "attribute:ecs.os-type in [windows,linux]", BASE, True),
    ("attr-in-padded", "attribute:ecs.os-type in [ windows , linux ]", BASE, True),
    ("attr-!in", "attribute:ecs.os-type !in [linux]", BASE, False),
    ("attr-not-in", "attribute:ecs.os-type not_in [windows]", BASE, True),
    ("attr-regex/full", "attribute:ecs.instance-type =~ t2.*", BASE, True),
    ("attr-regex/partial-is-no-match", "attribute:ecs.instance-type =~ t2", BASE, False),
    ("attr-regex/alternation-bare", "attribute:ecs.instance-type =~ t2.small|t2.micro", BASE, True),
    ("attr-regex/quoted-groups", r'attribute:ecs.instance-type matches "t2\.(small|micro)"',
     BASE, True),
    ("attr-regex/bare-char-class", "attribute:ecs.instance-type =~ t[23].small", BASE, True),
    ("attr-regex/bare-char-class-miss", "attribute:ecs.instance-type =~ t[34].*", BASE, False),
    ("attr-regex/bare-group", r"attribute:ecs.instance-type =~ (t2|g2)\..*", BASE, True),
    ("attr-regex/bare-group-in-parens", "(attribute:ecs.instance-type =~ (g2|p3).*)", BASE,
     False),
    ("attr-regex/bare-braces-with-comma", "attribute:memory_gb =~ [0-9]{1,3}", BASE, True),
    ("attr-regex/bare-braces-too-short", "attribute:memory_gb =~ [0-9]{3,4}", BASE, False),
    ("attr-!~", "attribute:ecs.instance-type !~ g2.*", BASE, True),
    ("attr-not-matches", "attribute:ecs.instance-type not_matches t2.*", BASE, False),
    ("attr-name-chars", "attribute:com.example/team_name-1 == x",
     having({"com.example/team_name-1": "x"}), True),
    # ordering: numeric when both sides are numbers, else string
    ("attr-gt-numeric", "attribute:memory_gb > 8", BASE, True),  # "16" > "8" is False as strings
    ("attr-lt-numeric", "attribute:memory_gb < 100", BASE, True),
    ("attr-greater-than-equal", "attribute:memory_gb greater_than_equal 16.0", BASE, True),
    ("attr-less-than-equal", "attribute:memory_gb less_than_equal 15.5", BASE, False),
    ("attr-greater-than", "attribute:memory_gb greater_than 16", BASE, False),
    ("attr-less-than", "attribute:memory_gb less_than 17", BASE, True),
    ("attr-ge-numeric", "attribute:memory_gb >= 1e1", BASE, True),
    ("attr-le-numeric", "attribute:memory_gb <= 16", BASE, True),
    ("attr-gt-string", "attribute:ecs.instance-type > t2.micro", BASE, True),
    ("attr-lt-string", "attribute:ecs.instance-type < t2.micro", BASE, False),
    ("attr-gt-mixed-is-string", "attribute:ecs.os-type > 5", BASE, True),
    ("attr-eq-is-string-not-number", "attribute:memory_gb == 16.0", BASE, False),
]

# A missing attribute satisfies only !exists; a valueless one exists but equals nothing.
MISSING_AND_VALUELESS = [
    ("missing-eq", "attribute:team == a", BASE, False),
    ("missing-ne", "attribute:team != a", BASE, False),
    ("missing-in", "attribute:team in [a]", BASE, False),
    ("missing-!in", "attribute:team !in [a]", BASE, False),
    ("missing-regex", "attribute:team =~ .*", BASE, False),
    ("missing-!~", "attribute:team !~ a", BASE, False),
    ("missing-gt", "attribute:team > 0", BASE, False),
    ("missing-le", "attribute:team <= 0", BASE, False),
    ("missing-exists", "attribute:team exists", BASE, False),
    ("missing-!exists", "attribute:team !exists", BASE, True),
    ("removed-builtin-ne", "attribute:ecs.os-type != windows", without("ecs.os-type"), False),
    ("valueless-exists", "attribute:gpu exists", BASE, True),
    ("valueless-!exists", "attribute:gpu !exists", BASE, False),
    ("valueless-eq", "attribute:gpu == x", BASE, False),
    ("valueless-ne", "attribute:gpu != x", BASE, True),
    ("valueless-in", "attribute:gpu in [x]", BASE, False),
    ("valueless-!in", "attribute:gpu !in [x]", BASE, True),
    ("valueless-regex", "attribute:gpu =~ .*", BASE, False),
    ("valueless-!~", "attribute:gpu !~ .*", BASE, True),
    ("valueless-gt", "attribute:gpu > 0", BASE, False),
]

# task:group is true when ANY group satisfies it; != / !in / !~ mean NO group does.
TASK_GROUPS = [
    ("group-eq/one-of-two", "task:group == service:web", BASE, True),
    ("group-eq/second", "task:group == family:db", BASE, True),
    ("group-eq/none", "task:group == service:api", BASE, False),
    ("group-equals-quoted", "task:group equals \"family:db\"", BASE, True),
    ("group-ne/one-matches", "task:group != service:web", BASE, False),
    ("group-not-equals/none-match", "task:group not_equals service:api", BASE, True),
    ("group-ne/no-tasks", "task:group != service:web", groups(), True),
    ("group-in", "task:group in [service:api, family:db]", BASE, True),
    ("group-in/none", "task:group in [service:api, family:x]", BASE, False),
    ("group-!in/one-listed", "task:group !in [service:api, family:db]", BASE, False),
    ("group-not-in", "task:group not_in [service:api]", BASE, True),
    ("group-regex", "task:group =~ service:.*", BASE, True),
    ("group-regex/full-match", "task:group =~ service", BASE, False),
    ("group-matches", "task:group matches 'family:(db|cache)'", BASE, True),
    ("group-!~/one-matches", "task:group !~ service:.*", BASE, False),
    ("group-not-matches", "task:group not_matches batch:.*", BASE, True),
    ("group-exists", "task:group exists", BASE, True),
    ("group-exists/no-tasks", "task:group exists", groups(), False),
    ("group-!exists/no-tasks", "task:group !exists", groups(), True),
    ("group-not-exists", "task:group not_exists", BASE, False),
    ("group-three-groups", "task:group == family:c", groups("family:a", "family:b", "family:c"),
     True),
]

TRUE_A = "attribute:ecs.os-type == linux"      # true on BASE
FALSE_B = "attribute:ecs.os-type == windows"   # false on BASE
FALSE_C = "runningTasksCount > 10"             # false on BASE
TRUE_D = "task:group exists"                   # true on BASE

LOGIC = [
    ("and/tt", f"{TRUE_A} and {TRUE_D}", BASE, True),
    ("and/tf", f"{TRUE_A} and {FALSE_B}", BASE, False),
    ("&&/tt", f"{TRUE_A} && {TRUE_D}", BASE, True),
    ("&&/ft", f"{FALSE_B} && {TRUE_A}", BASE, False),
    ("or/ff", f"{FALSE_B} or {FALSE_C}", BASE, False),
    ("or/ft", f"{FALSE_B} or {TRUE_A}", BASE, True),
    ("||/ff", f"{FALSE_B} || {FALSE_C}", BASE, False),
    ("||/tf", f"{TRUE_A} || {FALSE_B}", BASE, True),
    ("not-group", f"not({TRUE_A})", BASE, False),
    ("not-space-group", f"not ({FALSE_B})", BASE, True),
    ("not-single-comparison", f"not {TRUE_D}", BASE, False),
    ("bang-group", "!(attribute:a exists)", BASE, True),
    ("bang-group/present", "!(attribute:gpu exists)", BASE, False),
    ("bang-single-comparison", "!attribute:gpu exists", BASE, False),
    ("no-spaces", "attribute:ecs.os-type==linux&&runningTasksCount<5", BASE, True),
    ("no-spaces/false", "attribute:ecs.os-type==linux&&runningTasksCount>5", BASE, False),
    ("no-spaces-or", "attribute:ecs.os-type==windows||runningTasksCount<5", BASE, True),
    ("long-and-chain", " and ".join([TRUE_A, TRUE_D, TRUE_A, TRUE_D]), BASE, True),
    ("long-and-chain/last-false", " && ".join([TRUE_A, TRUE_D, TRUE_A, FALSE_B]), BASE, False),
    ("long-or-chain", " or ".join([FALSE_B, FALSE_C, FALSE_B, TRUE_D]), BASE, True),
    ("long-or-chain/all-false", " || ".join([FALSE_B, FALSE_C, FALSE_B]), BASE, False),
    # precedence NOT > AND > OR; a left-to-right reading would give the opposite answer
    ("or-binds-looser-than-and", f"{TRUE_A} or {FALSE_B} and {FALSE_C}", BASE, True),
    ("or-binds-looser-than-&&", f"{TRUE_A} || {FALSE_B} && {FALSE_C}", BASE, True),
    ("parens-override", f"({TRUE_A} or {FALSE_B}) and {FALSE_C}", BASE, False),
    ("not-binds-tighter-than-and", f"not {TRUE_A} and {FALSE_B}", BASE, False),
    ("not-binds-tighter-than-or", f"not {TRUE_A} or {TRUE_D}", BASE, True),
    ("not-over-parens-or", f"not ({TRUE_A} or {TRUE_D})", BASE, False),
    ("nested-not", f"not(not({TRUE_A}))", BASE, True),
    ("nested-bang", f"!!{TRUE_A}", BASE, True),
    ("triple-not", f"not !not ({TRUE_A})", BASE, False),
    ("nested-parens", f"((({FALSE_B}) or ({TRUE_A} and not({FALSE_C}))))", BASE, True),
    ("mixed-words-and-symbols", f"{TRUE_A} and ({FALSE_B} || !{FALSE_C})", BASE, True),
    ("not-inside-or", f"{FALSE_B} or not({FALSE_C}) and {TRUE_D}", BASE, True),
]

ALL_MATCH_ROWS = SPEC_EXAMPLES + SUBJECTS + MISSING_AND_VALUELESS + TASK_GROUPS + LOGIC


@table("expression, instance, expected", ALL_MATCH_ROWS)
def test_matches(expression: str, instance: Facts, expected: bool) -> None:
    assert compile_expression(expression).matches(instance) is expected


WORD_FORMS = [
    ("==", "equals"), ("!=", "not_equals"), (">", "greater_than"), (">=", "greater_than_equal"),
    ("<", "less_than"), ("<=", "less_than_equal"), ("!exists", "not_exists"), ("!in", "not_in"),
    ("=~", "matches"), ("!~", "not_matches"),
]
ARGUMENT_FOR = {"!exists": "", "!in": "[16, 8]", "=~": "1.*", "!~": "1.*"}


@table("symbol, word", [(f"{s}-is-{w}", s, w) for s, w in WORD_FORMS])
def test_word_form_means_the_same_as_symbol(symbol: str, word: str) -> None:
    argument = ARGUMENT_FOR.get(symbol, "16")
    outcomes = []
    for memory in ("8", "16", "32", None):
        instance = having({"memory_gb": memory}) if memory else without("memory_gb")
        as_symbol = compile_expression(f"attribute:memory_gb {symbol} {argument}").matches(instance)
        as_word = compile_expression(f"attribute:memory_gb {word} {argument}").matches(instance)
        assert as_symbol is as_word, memory
        outcomes.append(as_symbol)
    assert True in outcomes or symbol == "!exists"  # the comparison is not vacuous


@table("expression, dynamic", [
    ("attribute", "attribute:ecs.os-type == linux", False),
    ("instance-id", "ec2InstanceId == i-1", False),
    ("agent-connected", "agentConnected == true", False),
    ("agent-version", "agentVersion >= 1.0", False),
    ("registered-at", "registeredAt < 2020-01-01", False),
    ("running-tasks", "runningTasksCount < 3", True),
    ("task-group", "task:group != service:web", True),
    ("task-group-deep", "attribute:a exists or not(attribute:b exists and task:group exists)",
     True),
    ("count-in-or", "attribute:a exists || runningTasksCount == 0", True),
])
def test_dynamic_flag(expression: str, dynamic: bool) -> None:
    assert compile_expression(expression).dynamic is dynamic


def test_compiled_expressions_are_cached_and_keep_their_text() -> None:
    text = "attribute:ecs.os-type == linux"
    first = compile_expression(text)
    assert isinstance(first, Expression)
    assert first is compile_expression(text)
    assert first.text == text


def test_expression_at_the_length_limit_is_accepted() -> None:
    prefix = "attribute:a == "
    text = prefix + "x" * (MAX_EXPRESSION_LENGTH - len(prefix))
    assert len(text) == MAX_EXPRESSION_LENGTH
    value = "x" * (MAX_EXPRESSION_LENGTH - len(prefix))
    assert compile_expression(text).matches(having({"a": value}))
    assert not compile_expression(text).matches(having({"a": "x"}))


def test_regex_results_stay_correct_across_many_values() -> None:
    expression = compile_expression("ec2InstanceId =~ i-[0-9]*7")
    results = [expression.matches(facts(ec2_instance_id=f"i-{n}")) for n in range(5000)]
    assert results == [str(n).endswith("7") for n in range(5000)]
    assert results == [expression.matches(facts(ec2_instance_id=f"i-{n}")) for n in range(5000)]


TOO_LONG = "attribute:a == " + "x" * (MAX_EXPRESSION_LENGTH + 1 - len("attribute:a == "))

ERRORS = [
    # (id, expression, words the message must contain, position)
    ("empty", "", "expression is empty", 0),
    ("blank", "   ", "expression is empty", 0),
    ("too-long", TOO_LONG, "2001 characters long, over the limit of 2000", 2000),
    ("unknown-subject", "foo == 1", "unknown subject 'foo'", 0),
    ("subject-case-sensitive", "agentconnected == true", "unknown subject 'agentconnected'", 0),
    ("unknown-task-subject", "x == 1 or task:name == a", "unknown subject 'x'", 0),
    ("unknown-task-subject-later", "task:group exists or task:name == a",
     "unknown subject 'task:name'", 21),
    ("attribute-without-colon", "attribute exists", "unknown subject 'attribute'", 0),
    ("attribute-empty-name", "attribute: exists", "bad attribute name ''", 0),
    ("attribute-bad-char", "attribute:a$b exists", "bad attribute name 'a$b'", 0),
    ("attribute-name-too-long", f"attribute:{'a' * 129} exists", "bad attribute name", 0),
    ("op-not-allowed-id", "ec2InstanceId > i-1", "operator '>' is not allowed for subject "
     "'ec2InstanceId'", 14),
    ("op-not-allowed-word", "ec2InstanceId greater_than i-1",
     "operator 'greater_than' is not allowed for subject 'ec2InstanceId'", 14),
    ("op-not-allowed-connected", "agentConnected exists", "operator 'exists' is not allowed", 15),
    ("op-not-allowed-count-regex", "runningTasksCount =~ 1", "operator '=~' is not allowed", 18),
    ("op-not-allowed-version", "agentVersion !exists", "operator '!exists' is not allowed", 13),
    ("op-not-allowed-date", "registeredAt not_matches x", "operator 'not_matches' is not allowed",
     13),
    ("op-not-allowed-group", "task:group >= 1", "operator '>=' is not allowed for subject "
     "'task:group'", 11),
    ("unknown-operator", "attribute:a ~= b", "unknown operator '~='", 12),
    ("unknown-operator-word", "attribute:a is b", "unknown operator 'is'", 12),
    ("unknown-operator-longer-word", "attribute:a inside [b]", "unknown operator 'inside'", 12),
    ("missing-operator", "attribute:a", "missing operator after subject 'attribute:a'", 11),
    ("missing-operator-in-parens", "(attribute:a)", "missing operator", 12),
    ("missing-operator-before-and", "attribute:a and task:group exists", "missing operator", 12),
    ("missing-argument", "attribute:a ==", "missing argument after operator '=='", 14),
    ("missing-argument-word", "ec2InstanceId matches", "missing argument after operator "
     "'matches'", 21),
    ("missing-argument-in-parens", "(attribute:a == )", "missing argument", 16),
    ("missing-argument-before-and", "attribute:a == and task:group exists", "missing argument",
     15),
    ("missing-argument-before-&&", "attribute:a ==&&task:group exists", "missing argument", 14),
    ("argument-to-exists", "attribute:a exists yes", "operator 'exists' takes no argument, "
     "found 'yes'", 19),
    ("argument-to-!exists", "task:group !exists x", "operator '!exists' takes no argument", 19),
    ("argument-to-not-exists", "attribute:a not_exists [x]", "operator 'not_exists' takes no "
     "argument", 23),
    ("paren-never-closed", "(attribute:a exists", "unbalanced parentheses: '(' is never closed",
     0),
    ("inner-paren-never-closed", "((attribute:a exists)", "unbalanced parentheses", 0),
    ("not-paren-never-closed", "task:group exists and not(attribute:a exists",
     "unbalanced parentheses: '(' is never closed", 25),
    ("extra-close-paren", "attribute:a exists)", "unbalanced parentheses: ')' has no matching",
     18),
    ("bracket-never-closed", "attribute:a in [x, y", "unbalanced brackets: '[' is never closed",
     15),
    ("bracket-closed-by-paren", "(attribute:a in [x, y)", "unbalanced brackets", 16),
    ("extra-close-bracket", "attribute:a == x]", "unbalanced brackets: ']' has no matching", 16),
    ("in-without-list", "attribute:a in x", "operator 'in' needs a list like [a, b]", 15),
    ("not-in-without-list", "attribute:a not_in x", "operator 'not_in' needs a list", 19),
    ("empty-list", "attribute:a in []", "empty list after operator 'in'", 16),
    ("list-trailing-comma", "attribute:a in [x,]", "missing list item", 18),
    ("list-leading-comma", "attribute:a in [,x]", "missing list item", 16),
    ("list-missing-comma", "attribute:a in [x y]", "expected ',' or ']' in the list, found 'y'",
     18),
    ("list-for-single-value", "attribute:a == [x]", "operator '==' takes one value, not a list",
     15),
    ("unterminated-double-quote", 'attribute:a == "x', "unterminated quoted string", 15),
    ("unterminated-single-quote", "attribute:a == 'x", "unterminated quoted string", 15),
    ("unterminated-quote-in-list", "attribute:a in ['x, y]", "unterminated quoted string", 16),
    ("trailing-garbage", "attribute:a == b c", "unexpected 'c', expected 'and', 'or' or the end",
     17),
    ("trailing-garbage-in-parens", "(attribute:a == b c)", "unexpected 'c', expected 'and', 'or' "
     "or ')'", 18),
    ("single-ampersand", "attribute:a == b & task:group exists", "unexpected '&'", 17),
    ("dangling-and", "attribute:a exists and", "expression ends where a condition was expected",
     22),
    ("dangling-||", "attribute:a exists ||", "expression ends where a condition", 21),
    ("leading-and", "and attribute:a exists", "expected a condition, found 'and'", 0),
    ("lone-not", "not", "expression ends where a condition was expected", 3),
    ("empty-parens", "()", "expected a condition, found ')'", 1),
    ("bad-regex", "attribute:a =~ (", "bad regular expression '('", 15),
    ("bad-regex-quoted", "task:group matches '[a-'", "bad regular expression '[a-'", 19),
    ("bad-regex-unclosed-class", "attribute:a =~ t[23", "bad regular expression 't[23'", 15),
    ("regex-stray-bracket", "attribute:a =~ t2]", "unbalanced brackets: ']' has no matching", 17),
    ("bad-regex-not-matches", "ec2InstanceId !~ *abc", "bad regular expression '*abc'", 17),
    ("bad-date-month", "registeredAt < 2018-13-01", "bad date '2018-13-01' for registeredAt",
     15),
    ("bad-date-word", "registeredAt < yesterday", "bad date 'yesterday'", 15),
    ("bad-date-no-seconds", "registeredAt < 2018-06-18T22:28", "bad date", 15),
    ("bad-date-in-list", "registeredAt in [2018-01-01, nope]", "bad date 'nope'", 29),
    ("bad-number-word", "runningTasksCount > many", "bad number 'many' for runningTasksCount",
     20),
    ("bad-number-fraction", "runningTasksCount > 1.5", "bad number '1.5'", 20),
    ("bad-version-letter", "agentVersion < 1.x", "bad version '1.x' for agentVersion", 15),
    ("bad-version-word", "agentVersion < latest", "bad version 'latest'", 15),
    ("bad-version-double-dot", "agentVersion < 1..2", "bad version '1..2'", 15),
    ("bad-boolean", "agentConnected == yes", "agentConnected compares against true or false",
     18),
    ("too-deep-not", "not " * 70 + "task:group exists", "nest more than 64 deep", 256),
    ("too-deep-parens", "(" * 70 + "task:group exists" + ")" * 70, "nest more than 64 deep", 64),
]


@table("expression, words, position", ERRORS)
def test_syntax_errors(expression: str, words: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        compile_expression(expression)
    message = str(caught.value)
    assert message.startswith("Invalid placement expression: ")
    assert words in message
    assert message.endswith(f" at position {position}")
    assert caught.value.position == position


def test_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        compile_expression("foo == bar")


FUZZ_PIECES = [
    "attribute:a", "task:group", "agentVersion", "registeredAt", "runningTasksCount",
    "ec2InstanceId", "agentConnected", " ", "==", "!=", ">", "<=", "=~", "!~", "exists",
    "!exists", "in", "not_in", "[", "]", ",", "(", ")", "!", "not", "and", "or", "&&", "||",
    "'", '"', "1", "1.2", "2018-01-01", "true", "x", ".*", "{",
]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # re's notes on odd character classes
def test_malformed_input_only_ever_raises_query_syntax_error() -> None:
    rng = random.Random(20240601)
    instance = facts(agent_version="not-a-version", task_groups=frozenset({"service:web"}))
    accepted = 0
    for _ in range(3000):
        text = "".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 10)))
        try:
            outcome = compile_expression(text).matches(instance)
        except QuerySyntaxError as error:
            assert 0 <= error.position <= len(text), text
        else:
            assert outcome in (True, False)
            accepted += 1
    assert accepted > 0  # the generator does reach valid expressions
