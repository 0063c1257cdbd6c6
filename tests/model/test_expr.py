"""The safe condition language: JavaScript semantics, rejected syntax and error messages.

The expected values of ``JS_TABLE`` were produced by Node.js evaluating each expression after
``let KEY="value";`` for every variable in ``ENV``, exactly as OPEN-WHEEL's ``evalCondition``
does; ``test_table_agrees_with_node`` re-checks them when ``node`` is installed.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from sharin.errors import SharinError
from sharin.model import _expr
from sharin.model._expr import (
    UNDEFINED,
    Expr,
    ExpressionError,
    JSValue,
    evaluate,
    is_true,
    parse_expression,
    to_js_number,
    to_js_string,
)

NAN = math.nan
INF = math.inf

ENV = {
    "WHEEL_CURRENT_INDEX": "3",
    "EMPTY": "",
    "ZERO": "0",
    "SPACE": "  ",
    "HEX": "0x1F",
    "TEXT": "foo",
    "TEN": "10",
    "NINE": "9",
    "FLOAT": "2.50",
    "NEG": "-1",
    "TRUE_S": "true",
    "$dollar_var": "d",
    "_under": "u",
}


def same(a: object, b: object) -> bool:
    """JavaScript's Object.is for our values: NaN is NaN, 0 is not -0, types must match."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


JS_TABLE: list[tuple[str, JSValue]] = [
    ("42", 42.0),
    ("3.14", 3.14),
    (".5", 0.5),
    ("5.", 5.0),
    ("1e3", 1000.0),
    ("1E-3", 0.001),
    ("0x1F", 31.0),
    ("0b101", 5.0),
    ("0o17", 15.0),
    ("0", 0.0),
    ("'single'", "single"),
    ('"double"', "double"),
    ('"esc\\n\\t\\"q\\""', 'esc\n\t"q"'),
    ("'\\x41\\u0042\\u{43}'", "ABC"),
    ("'it\\'s'", "it's"),
    ('"a\\\nb"', "ab"),
    ("true", True),
    ("false", False),
    ("null", None),
    ("undefined", UNDEFINED),
    ("NaN", NAN),
    ("Infinity", INF),
    ("-Infinity", -INF),
    ("1 + 2", 3.0),
    ('"1" + 2', "12"),
    ('1 + "2"', "12"),
    ('"a" + null', "anull"),
    ('"a" + undefined', "aundefined"),
    ('"a" + true', "atrue"),
    ("1 + true", 2.0),
    ("1 + null", 1.0),
    ("1 + undefined", NAN),
    ('"3" - 1', 2.0),
    ('"3" * "4"', 12.0),
    ('"a" * 2', NAN),
    ("7 / 2", 3.5),
    ("1 / 0", INF),
    ("-1 / 0", -INF),
    ("0 / 0", NAN),
    ("1 / -0", -INF),
    ("7 % 3", 1.0),
    ("-7 % 3", -1.0),
    ("7 % -3", 1.0),
    ("5.5 % 2", 1.5),
    ("1 % 0", NAN),
    ("5 % Infinity", 5.0),
    ("Infinity % 2", NAN),
    ("0.1 + 0.2", 0.30000000000000004),
    ("2 * 3 + 4", 10.0),
    ("2 * (3 + 4)", 14.0),
    ("10 - 2 - 3", 5.0),
    ("100 / 10 / 5", 2.0),
    ("2 + 3 * 4 - 6 / 2 % 4", 11.0),
    ('-"3"', -3.0),
    ('+"3"', 3.0),
    ('+""', 0.0),
    ('+" 12 "', 12.0),
    ('+"\\n12\\t"', 12.0),
    ('+"1e3"', 1000.0),
    ('+"0x10"', 16.0),
    ('+"-0x10"', NAN),
    ('+"12px"', NAN),
    ('+"1_000"', NAN),
    ('+"Infinity"', INF),
    ('+"-Infinity"', -INF),
    ('+"infinity"', NAN),
    ('+"0b11"', 3.0),
    ('+"0o17"', 15.0),
    ('+".5"', 0.5),
    ('+"5."', 5.0),
    ('+"."', NAN),
    ('+"+5"', 5.0),
    ('+"e5"', NAN),
    ("+true", 1.0),
    ("+null", 0.0),
    ("+undefined", NAN),
    ("-(-3)", 3.0),
    ("- -3", 3.0),
    ("1 + - + 1", 0.0),
    ("!0", True),
    ('!""', True),
    ('!"0"', False),
    ('!!"false"', True),
    ("!NaN", True),
    ("!null", True),
    ("!undefined", True),
    ("!!-0", False),
    ("String(1e21)", "1e+21"),
    ("String(1e20)", "100000000000000000000"),
    ("String(1e-7)", "1e-7"),
    ("String(1e-6)", "0.000001"),
    ("String(123456789012345680000)", "123456789012345680000"),
    ("String(0.000001)", "0.000001"),
    ("String(-0)", "0"),
    ("String(1/3)", "0.3333333333333333"),
    ("String(100)", "100"),
    ("String(1.5e300)", "1.5e+300"),
    ("String(-1.5e-300)", "-1.5e-300"),
    ('"" + 0.1 * 3', "0.30000000000000004"),
    ('"" + 2e-7', "2e-7"),
    ('"" + 123e-20', "1.23e-18"),
    ("String(NaN)", "NaN"),
    ("String(-Infinity)", "-Infinity"),
    ("String(null)", "null"),
    ("String(undefined)", "undefined"),
    ("String()", ""),
    ("String(123)", "123"),
    ("String(true)", "true"),
    ('String("s")', "s"),
    ('WHEEL_CURRENT_INDEX === "3"', True),
    ("WHEEL_CURRENT_INDEX === 3", False),
    ("WHEEL_CURRENT_INDEX == 3", True),
    ("WHEEL_CURRENT_INDEX != 3", False),
    ("WHEEL_CURRENT_INDEX !== 3", True),
    ("WHEEL_CURRENT_INDEX < 10", True),
    ('WHEEL_CURRENT_INDEX < "10"', False),
    ("TEN < NINE", True),
    ("Number(TEN) < Number(NINE)", False),
    ('"abc" < "abd"', True),
    ('"B" < "a"', True),
    ('"" < "a"', True),
    ('"a" < ""', False),
    ("null == undefined", True),
    ("null === undefined", False),
    ("null == 0", False),
    ("null >= 0", True),
    ("null > 0", False),
    ("null <= 0", True),
    ("undefined == 0", False),
    ("undefined < 1", False),
    ("undefined >= 1", False),
    ("NaN == NaN", False),
    ("NaN != NaN", True),
    ("NaN === NaN", False),
    ("NaN < 1", False),
    ("NaN >= 1", False),
    ('0 == ""', True),
    ('0 == "0"', True),
    ('"" == "0"', False),
    ('false == "0"', True),
    ('false == ""', True),
    ("false == null", False),
    ("false == undefined", False),
    ('true == "1"', True),
    ('true == "true"', False),
    ("true === 1", False),
    ("1 == 1.0", True),
    ('"1" == 1.0', True),
    ('" 1 " == 1', True),
    ("EMPTY == 0", True),
    ("ZERO == false", True),
    ("SPACE == 0", True),
    ("HEX == 31", True),
    ("0 === -0", True),
    ("0 == -0", True),
    ('"a" <= "a"', True),
    ('2 >= "2"', True),
    ('"2" > 1', True),
    ("true > false", True),
    ('"x" < 1', False),
    ('"x" >= 1', False),
    ("1 < 2 < 3", True),
    ("3 > 2 > 1", False),
    ('"\\uFF61" < "\\uD83D\\uDE00"', False),
    ("1 && 2", 2.0),
    ("0 && 2", 0.0),
    ('"" || "default"', "default"),
    ('"x" || "y"', "x"),
    ("null || undefined", UNDEFINED),
    ("undefined && 1", UNDEFINED),
    ('EMPTY || "fallback"', "fallback"),
    ("WHEEL_CURRENT_INDEX && TEXT", "foo"),
    ('false || 0 || "" || null', None),
    ("1 && 0 && 2", 0.0),
    ("1 || 0 && 2", 1.0),
    ("(1 || 0) && 2", 2.0),
    ("0 || 1 && 2", 2.0),
    ('true ? "yes" : "no"', "yes"),
    ('EMPTY ? "yes" : "no"', "no"),
    ('ZERO ? "yes" : "no"', "yes"),
    ("1 ? 2 ? 3 : 4 : 5", 3.0),
    ("0 ? 1 : 0 ? 2 : 3", 3.0),
    ('WHEEL_CURRENT_INDEX > 2 ? "big" : "small"', "big"),
    ("1 < 2 ? 1 + 1 : 3", 2.0),
    ('Number("")', 0.0),
    ('Number(" ")', 0.0),
    ('Number("12")', 12.0),
    ('Number("1_000")', NAN),
    ('Number("Infinity")', INF),
    ('Number("-0b11")', NAN),
    ("Number(null)", 0.0),
    ("Number(undefined)", NAN),
    ("Number(true)", 1.0),
    ("Number(false)", 0.0),
    ("Number()", 0.0),
    ("Number(FLOAT)", 2.5),
    ('Number("\\u00a0 5 \\ufeff")', 5.0),
    ('Number("١٢")', NAN),
    ('parseInt("42px")', 42.0),
    ('parseInt("  -17.9")', -17.0),
    ('parseInt("0x1F")', 31.0),
    ('parseInt("-0x1F")', -31.0),
    ('parseInt("1F", 16)', 31.0),
    ('parseInt("0x1F", 16)', 31.0),
    ('parseInt("0x1F", 10)', 0.0),
    ('parseInt("101", 2)', 5.0),
    ('parseInt("z", 36)', 35.0),
    ('parseInt("Z", 36)', 35.0),
    ('parseInt("10", 37)', NAN),
    ('parseInt("10", 1)', NAN),
    ('parseInt("10", 0)', 10.0),
    ('parseInt("10", 2.9)', 2.0),
    ('parseInt("10", "16")', 16.0),
    ('parseInt("10", null)', 10.0),
    ('parseInt("abc")', NAN),
    ('parseInt("")', NAN),
    ("parseInt(0.0000005)", 5.0),
    ("parseInt(null)", NAN),
    ('parseInt("Infinity")', NAN),
    ('parseInt("-0")', -0.0),
    ('parseInt("+12")', 12.0),
    ('parseInt("1e3")', 1.0),
    ('parseInt("١٢")', NAN),
    ("parseInt()", NAN),
    ('parseInt("123456789012345678901234567890")', 1.2345678901234568e29),
    ('parseFloat("3.14abc")', 3.14),
    ('parseFloat(".5")', 0.5),
    ('parseFloat("-.5e-3x")', -0.0005),
    ('parseFloat("1e")', 1.0),
    ('parseFloat("1e+")', 1.0),
    ('parseFloat("Infinityx")', INF),
    ('parseFloat("-Infinity")', -INF),
    ('parseFloat("x1")', NAN),
    ('parseFloat("  2.50")', 2.5),
    ('parseFloat("0x10")', 0.0),
    ('parseFloat("1e400")', INF),
    ("parseFloat()", NAN),
    ("parseFloat(FLOAT) === 2.5", True),
    ('Boolean("0")', True),
    ('Boolean("")', False),
    ("Boolean(0)", False),
    ("Boolean(NaN)", False),
    ("Boolean()", False),
    ('Boolean("false")', True),
    ('String(WHEEL_CURRENT_INDEX) === "3"', True),
    ("parseInt(WHEEL_CURRENT_INDEX) + 1", 4.0),
    ("Number(WHEEL_CURRENT_INDEX) + 1", 4.0),
    ("WHEEL_CURRENT_INDEX + 1", "31"),
    ("WHEEL_CURRENT_INDEX - 1", 2.0),
    ("WHEEL_CURRENT_INDEX * 2 === 6", True),
    ("WHEEL_CURRENT_INDEX % 2 === 1", True),
    ("NEG < 0", True),
    ("-NEG", 1.0),
    ("TRUE_S == true", False),
    ('TRUE_S === "true"', True),
    ("WHEEL_CURRENT_INDEX\n  < 5", True),
    ("\tWHEEL_CURRENT_INDEX\t== 3 ", True),
    ("$dollar_var + _under", "du"),
    ('"\\uD83D\\uDE00" === "\U0001f600"', True),
]


@pytest.mark.parametrize(("text", "expected"), JS_TABLE, ids=[t for t, _ in JS_TABLE])
def test_javascript_semantics(text: str, expected: JSValue) -> None:
    assert same(evaluate(text, ENV), expected)


def test_table_agrees_with_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the table was produced with Node.js 18+")
    script = (
        "const [env, cases] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const pre = Object.entries(env).map(([k, v]) => `let ${k}=${JSON.stringify(v)};`).join('');"
        "console.log(JSON.stringify(cases.map((c) => { const v = (0, eval)(pre + c);"
        " const t = v === null ? 'null' : typeof v;"
        " return [t, t === 'number' ? (Object.is(v, -0) ? '-0' : String(v)) : (v === undefined ? '' : v)]; })));"
    )
    cases = [text for text, _ in JS_TABLE]
    out = subprocess.run(
        [node, "-e", script],
        input=json.dumps([ENV, cases]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for (text, expected), (kind, shown) in zip(JS_TABLE, json.loads(out), strict=True):
        if kind == "number":
            assert isinstance(expected, float) and not isinstance(expected, bool), text
            assert (to_js_string(expected) if not same(expected, -0.0) else "-0") == shown, text
        else:
            assert {"string": str, "boolean": bool, "null": type(None)}.get(
                kind, type(UNDEFINED)
            ) is type(expected), text
            assert kind == "undefined" or expected == shown, text


# --------------------------------------------------------------------------------------------
# conversions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (123.456, "123.456"),
        (2**53, "9007199254740992"),
        (NAN, "NaN"),
        (-INF, "-Infinity"),
        (True, "true"),
        (None, "null"),
        (UNDEFINED, "undefined"),
        ("x", "x"),
    ],
)
def test_to_js_string(value: JSValue, expected: str) -> None:
    assert to_js_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 0.0), ("  42  ", 42.0), ("4 2", NAN), ("0x10", 16.0), ("1e999", INF), (None, 0.0)],
)
def test_to_js_number(value: JSValue, expected: float) -> None:
    assert same(to_js_number(value), expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (NAN, False),
        (1, True),
        (-1.5, True),
        ("", False),
        ("0", True),
        ("false", True),
        (" ", True),
        (None, False),
        (UNDEFINED, False),
        (object(), True),
    ],
)
def test_is_true(value: object, expected: bool) -> None:
    assert is_true(value) is expected


def test_variables_are_strings_like_open_wheel_but_numbers_are_accepted() -> None:
    assert evaluate("WHEEL_CURRENT_INDEX === '3'", {"WHEEL_CURRENT_INDEX": "3"}) is True
    assert evaluate("WHEEL_CURRENT_INDEX === 3", {"WHEEL_CURRENT_INDEX": 3}) is True
    assert evaluate("X + 1", {"X": 2.5}) == 3.5
    assert evaluate("F ? 'y' : 'n'", {"F": False}) == "n"
    assert evaluate("BIG", {"BIG": 10**400}) == INF
    with pytest.raises(TypeError, match="'L' must be a str"):
        evaluate("L", {"L": [1]})  # type: ignore[dict-item]


def test_short_circuit_does_not_touch_unknown_names() -> None:
    assert evaluate("false && NOPE", {}) is False
    assert evaluate("1 || NOPE", {}) == 1.0
    assert evaluate("true ? 1 : NOPE", {}) == 1.0
    with pytest.raises(ExpressionError, match="unknown variable 'NOPE'"):
        evaluate("true && NOPE", {})


def test_parse_once_evaluate_many() -> None:
    expr = parse_expression("WHEEL_CURRENT_INDEX < 3 && WHEEL_CURRENT_INDEX !== SKIP")
    assert isinstance(expr, Expr)
    assert str(expr) == expr.text
    assert expr.variables == {"WHEEL_CURRENT_INDEX", "SKIP"}
    trips = [
        i for i in range(6) if is_true(evaluate(expr, {"WHEEL_CURRENT_INDEX": str(i), "SKIP": "1"}))
    ]
    assert trips == [0, 2]


def test_constants_are_not_variables() -> None:
    assert parse_expression("true || null || undefined || NaN || Infinity").variables == frozenset()
    # a variable named like a constant cannot shadow it, as in JavaScript
    assert evaluate("undefined", {"undefined": "x"}) is UNDEFINED


# --------------------------------------------------------------------------------------------
# rejected syntax


REJECTED: list[tuple[str, str, int]] = [
    ("WHEEL_CURRENT_INDEX = 3", "assignment is not allowed", 21),
    ("a += 1", "assignment is not allowed", 3),
    ("a++", "increment and decrement", 2),
    ("--a", "increment and decrement", 1),
    ("a; b", "';' is not allowed", 2),
    ("a;", "';' is not allowed", 2),
    ("a.length", "property access is not allowed", 2),
    ("a?.b", "property access is not allowed", 2),
    ("a[0]", "indexing", 2),
    ("[1, 2]", "indexing", 1),
    ("{}", "object literals", 1),
    ("function () { return 1 }", "keyword 'function'", 1),
    ("() => 1", "function definitions are not allowed", 4),
    ("x => 1", "function definitions are not allowed", 3),
    ("new Date()", "keyword 'new'", 1),
    ("typeof a", "keyword 'typeof'", 1),
    ("this", "keyword 'this'", 1),
    ("'a' in b", "'in' operator is not allowed", 5),
    ("require('fs')", "unknown function require()", 1),
    ("process.exit(1)", "property access is not allowed", 8),
    ("eval('1')", "unknown function eval()", 1),
    ("(Number)(1)", "Number is a function", 2),
    ("Number", "Number is a function", 1),
    ("(a)(1)", "only the functions", 4),
    ("Number(1)(2)", "only the functions", 10),
    ("Number(1, 2)", "Number() takes at most 1 argument, got 2", 1),
    ("parseInt(1, 2, 3)", "parseInt() takes at most 2 arguments, got 3", 1),
    ("1, 2", "',' is only allowed between function arguments", 2),
    ("a & b", "bitwise operators are not allowed (use && for 'and')", 3),
    ("a | b", "bitwise operators are not allowed (use || for 'or')", 3),
    ("a ^ b", "bitwise", 3),
    ("~a", "bitwise", 1),
    ("a << 1", "bitwise", 3),
    ("a >>> 1", "bitwise", 3),
    ("2 ** 3", "the ** operator is not allowed", 3),
    ("a ?? b", "the ?? operator is not allowed", 3),
    ("`x${a}`", "template strings are not allowed", 1),
    ("a // comment", "comments are not allowed", 3),
    ("a /* c */", "comments are not allowed", 3),
    ("010", "must not start with 0", 1),
    ("08", "must not start with 0", 1),
    ("1abc", "right after the number", 2),
    ("1..toString()", "right after the number", 3),
    ("10n", "right after the number", 3),
    ("'abc", "unterminated string", 1),
    ('"abc\ndef"', "unterminated string", 1),
    ("'\\1'", "octal escape", 2),
    ("'\\x4'", "'\\x' must be followed by 2 hex digits", 2),
    ("'\\u12'", "'\\u' must be followed by 4 hex digits", 2),
    ("'\\u{110000}'", "'\\u' must be followed", 2),
    ("", "the condition is empty", 1),
    ("   ", "the condition is empty", 1),
    ("(1", "expected ')'", 3),
    ("1)", "unbalanced ')'", 2),
    ("1 +", "expected a value, found the end of the condition", 4),
    ("a b", "expected an operator or the end of the condition, found 'b'", 3),
    ("a ? b", "expected ':'", 6),
    ("* 2", "expected a value, found '*'", 1),
    ("a = = b", "assignment", 3),
    ("#x", "private names", 1),
    ("@x", "decorators", 1),
    ("a \\ b", "backslashes", 3),
    ("a € b", "unexpected character '€'", 3),
]


@pytest.mark.parametrize(("text", "reason", "column"), REJECTED, ids=[t for t, _, _ in REJECTED])
def test_rejected(text: str, reason: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    err = info.value
    assert reason in err.reason
    assert err.column == column
    assert err.expression == text


def test_error_message_shows_expression_column_caret_and_what_is_allowed() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("WHEEL_CURRENT_INDEX = 3")
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "condition 'WHEEL_CURRENT_INDEX = 3', column 21: "
        "assignment is not allowed (use == or === to compare)"
    )
    assert lines[1] == "    WHEEL_CURRENT_INDEX = 3"
    assert lines[2] == "    " + " " * 20 + "^"
    assert lines[3].startswith("allowed: numbers")
    for piece in (
        "&& ||",
        "=== !==",
        "a ? b : c",
        "Number()",
        "parseInt()",
        "parseFloat()",
        "String()",
    ):
        assert piece in lines[3]
    assert isinstance(info.value, SharinError)


def test_error_in_a_multi_line_condition_gives_line_and_column() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a &&\n  b.c")
    assert (info.value.line, info.value.column, info.value.position) == (2, 4, 8)
    lines = str(info.value).splitlines()
    assert "line 2, column 4" in lines[0]
    assert lines[1:3] == ["      b.c", "       ^"]


def test_unknown_variable_names_it_and_lists_known_ones() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("WHEEL_CURRENT_INDX < 3", {"WHEEL_CURRENT_INDEX": "1", "A": "2"})
    err = info.value
    assert err.reason == "unknown variable 'WHEEL_CURRENT_INDX'"
    assert err.column == 1
    text = str(err)
    assert "defined variables: A, WHEEL_CURRENT_INDEX" in text
    assert "allowed:" not in text  # the syntax is fine; the hint is about variables


def test_unknown_variable_with_many_or_no_variables() -> None:
    many = {f"V{i:02d}": "x" for i in range(30)}
    with pytest.raises(ExpressionError, match="30 variables are defined, e.g. V00, V01"):
        evaluate("nope", many)
    with pytest.raises(ExpressionError, match="no variables are defined here"):
        evaluate("1 + nope", {})


def test_nesting_is_limited_without_recursion_error() -> None:
    assert evaluate("(" * 40 + "1" + ")" * 40, {}) == 1.0
    assert evaluate("!" * 41 + "0", {}) is True
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("- " * 500 + "1")
    with pytest.raises(ExpressionError, match="too long or nested too deeply"):
        parse_expression(" + ".join(["1"] * 1000))
    assert evaluate(" + ".join(["1"] * 100), {}) == 100.0


def test_parse_expression_wants_a_string() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        parse_expression(3)  # type: ignore[arg-type]


def test_exports() -> None:
    for name in _expr.__all__:
        assert hasattr(_expr, name), name
    assert {"parse_expression", "evaluate", "is_true", "ExpressionError", "Expr"} <= set(
        _expr.__all__
    )
