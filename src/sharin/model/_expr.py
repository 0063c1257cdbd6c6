"""A small, safe expression language for WHEEL conditions.

WHEEL evaluates the ``condition`` of If, While, Break and Continue components, a task's
``retryCondition`` and a bulk job's finish condition with JavaScript's ``eval`` on the server,
after prepending ``let KEY="value";`` for every environment variable (so every variable is a
*string*). That runs arbitrary code. This module accepts the expressions WHEEL users actually
write and evaluates them with JavaScript's semantics, without running any code:

* literals: numbers (``3``, ``2.5``, ``.5``, ``1e3``, ``0x1F``, ``0b101``, ``0o17``), strings in
  single or double quotes (with JavaScript escapes), ``true false null undefined NaN Infinity``;
* variables: any other name, looked up in the mapping given to :func:`evaluate`;
* ``( )``, unary ``! - +``, ``* / %``, ``+ -`` (``+`` concatenates when either side is a string),
  ``< <= > >=`` (string comparison when both sides are strings, numeric otherwise),
  ``== !=`` (loose, ``"3" == 3``), ``=== !==`` (strict), ``&& ||`` (short-circuit, returning an
  operand, not a boolean) and ``a ? b : c``;
* calls of ``Number(x)``, ``parseInt(x[, radix])``, ``parseFloat(x)``, ``String(x)`` and
  ``Boolean(x)``.

Everything else (assignments, ``;``, property access, indexing, function definitions, other
calls, bitwise operators, template strings, comments) is rejected by :func:`parse_expression`
with an :class:`ExpressionError` that shows the expression, points at the column and lists what
is allowed. Numbers are Python floats, ``null`` is ``None`` and ``undefined`` is
:data:`UNDEFINED`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Final, TypeAlias

from ..errors import SharinError

__all__ = [
    "ALLOWED_SYNTAX",
    "FUNCTIONS",
    "UNDEFINED",
    "Expr",
    "ExpressionError",
    "JSValue",
    "Undefined",
    "evaluate",
    "is_true",
    "looks_like_script_name",
    "parse_expression",
    "to_js_number",
    "to_js_string",
]


class Undefined:
    """JavaScript's ``undefined``; the only instance is :data:`UNDEFINED`."""

    _instance: Undefined | None = None
    __slots__ = ()

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = Undefined()

#: A JavaScript primitive as this module represents it.
JSValue: TypeAlias = float | str | bool | None | Undefined

#: The functions an expression may call, with the most arguments each accepts.
FUNCTIONS: Final[Mapping[str, int]] = {
    "Number": 1,
    "parseInt": 2,
    "parseFloat": 1,
    "String": 1,
    "Boolean": 1,
}

ALLOWED_SYNTAX: Final = (
    "allowed: numbers, 'single' or \"double\" quoted strings, variable names, "
    "true false null undefined NaN Infinity, ( ), unary ! - +, * / %, + -, < <= > >=, "
    "== != === !==, && ||, a ? b : c, and calls of " + " ".join(f"{name}()" for name in FUNCTIONS)
)

_CONSTANTS: Final[Mapping[str, JSValue]] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": UNDEFINED,
    "NaN": math.nan,
    "Infinity": math.inf,
}

_JS_KEYWORDS: Final = frozenset(
    "async await break case catch class const continue debugger default delete do else enum "
    "export extends finally for function if import in instanceof let new of return static super "
    "switch this throw try typeof var void while with yield".split()
)

# Operators the language has, longest first within each length.
_OPERATORS: Final = frozenset(
    ["===", "!==", "==", "!=", "<=", ">=", "&&", "||"] + list("<>+-*/%!?:(),")
)

# Tokens JavaScript has but this language refuses, with the reason given to the user.
_FORBIDDEN: Final[Mapping[str, str]] = {
    ">>>=": "bitwise operators are not allowed",
    "...": "spread syntax is not allowed",
    ">>>": "bitwise operators are not allowed",
    "**=": "assignment is not allowed",
    "<<=": "assignment is not allowed",
    ">>=": "assignment is not allowed",
    "&&=": "assignment is not allowed",
    "||=": "assignment is not allowed",
    "??=": "assignment is not allowed",
    "=>": "function definitions are not allowed",
    "++": "increment and decrement are not allowed",
    "--": "increment and decrement are not allowed (write `- -x` to negate twice)",
    "+=": "assignment is not allowed",
    "-=": "assignment is not allowed",
    "*=": "assignment is not allowed",
    "/=": "assignment is not allowed",
    "%=": "assignment is not allowed",
    "&=": "assignment is not allowed",
    "|=": "assignment is not allowed",
    "^=": "assignment is not allowed",
    "**": "the ** operator is not allowed",
    "??": "the ?? operator is not allowed",
    "?.": "property access is not allowed",
    "<<": "bitwise operators are not allowed",
    ">>": "bitwise operators are not allowed",
    "//": "comments are not allowed",
    "/*": "comments are not allowed",
    "=": "assignment is not allowed (use == or === to compare)",
    ";": "';' is not allowed: write a single expression",
    ".": "property access is not allowed",
    "[": "indexing and array literals are not allowed",
    "]": "indexing and array literals are not allowed",
    "{": "blocks and object literals are not allowed",
    "}": "blocks and object literals are not allowed",
    "&": "bitwise operators are not allowed (use && for 'and')",
    "|": "bitwise operators are not allowed (use || for 'or')",
    "^": "bitwise operators are not allowed",
    "~": "bitwise operators are not allowed",
    "`": "template strings are not allowed",
    "#": "private names are not allowed",
    "@": "decorators are not allowed",
    "\\": "backslashes are only allowed inside strings",
}

_MAX_DEPTH: Final = 64
_MAX_TREE_DEPTH: Final = 200

# JavaScript's WhiteSpace and LineTerminator characters (used by Number(), parseInt(), ...).
_JS_SPACE: Final = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"

_DECIMAL_LITERAL: Final = r"(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
_RE_STR_DECIMAL: Final = re.compile(rf"[+-]?{_DECIMAL_LITERAL}")
_RE_STR_NONDECIMAL: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[bB][01]+|[oO][0-7]+)")
_RE_NUMBER_TOKEN: Final = re.compile(
    r"0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)


class ExpressionError(SharinError):
    """A condition cannot be parsed or evaluated.

    Attributes:
        expression: the text of the condition.
        position: 0-based offset of the problem in ``expression``.
        line: 1-based line of the problem.
        column: 1-based column of the problem within its line.
        reason: what is wrong, without the location.
    """

    def __init__(
        self, expression: str, position: int, reason: str, *, hint: str | None = ALLOWED_SYNTAX
    ) -> None:
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        before = expression[: self.position]
        self.line = before.count("\n") + 1
        self.column = self.position - (before.rfind("\n") + 1) + 1
        self.reason = reason
        where = (
            f"line {self.line}, column {self.column}"
            if "\n" in expression
            else f"column {self.column}"
        )
        source_line = expression.split("\n")[self.line - 1].rstrip("\r")
        message = (
            f"condition {expression!r}, {where}: {reason}\n"
            f"    {source_line}\n"
            f"    {' ' * (self.column - 1)}^"
        )
        if hint:
            message += f"\n{hint}"
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# AST


class _Value:
    """An immutable value compared by its fields, as a frozen dataclass with slots behaves.

    Written out instead of ``@dataclass``: generating the methods of nine classes took about
    ten milliseconds at import, which every ``sharin validate`` paid."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Value) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _set(self, **fields: object) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)


class Const(_Value):
    __slots__ = ("value", "pos")
    __match_args__ = ("value", "pos")
    value: JSValue
    pos: int

    def __init__(self, value: JSValue, pos: int) -> None:
        self._set(value=value, pos=pos)


class Var(_Value):
    __slots__ = ("name", "pos")
    __match_args__ = ("name", "pos")
    name: str
    pos: int

    def __init__(self, name: str, pos: int) -> None:
        self._set(name=name, pos=pos)


class Unary(_Value):
    __slots__ = ("op", "operand", "pos")
    __match_args__ = ("op", "operand", "pos")
    op: str
    operand: Node
    pos: int

    def __init__(self, op: str, operand: Node, pos: int) -> None:
        self._set(op=op, operand=operand, pos=pos)


class Binary(_Value):
    __slots__ = ("op", "left", "right", "pos")
    __match_args__ = ("op", "left", "right", "pos")
    op: str
    left: Node
    right: Node
    pos: int

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        self._set(op=op, left=left, right=right, pos=pos)


class Logical(_Value):
    __slots__ = ("op", "left", "right", "pos")
    __match_args__ = ("op", "left", "right", "pos")
    op: str
    left: Node
    right: Node
    pos: int

    def __init__(self, op: str, left: Node, right: Node, pos: int) -> None:
        self._set(op=op, left=left, right=right, pos=pos)


class Conditional(_Value):
    __slots__ = ("test", "then", "other", "pos")
    __match_args__ = ("test", "then", "other", "pos")
    test: Node
    then: Node
    other: Node
    pos: int

    def __init__(self, test: Node, then: Node, other: Node, pos: int) -> None:
        self._set(test=test, then=then, other=other, pos=pos)


class Call(_Value):
    __slots__ = ("func", "args", "pos")
    __match_args__ = ("func", "args", "pos")
    func: str
    args: tuple[Node, ...]
    pos: int

    def __init__(self, func: str, args: tuple[Node, ...], pos: int) -> None:
        self._set(func=func, args=args, pos=pos)


Node: TypeAlias = Const | Var | Unary | Binary | Logical | Conditional | Call


class Expr(_Value):
    """A parsed condition: its text, its syntax tree and the variables it names."""

    __slots__ = ("text", "root", "variables")
    __match_args__ = ("text", "root", "variables")
    text: str
    root: Node
    variables: frozenset[str]

    def __init__(self, text: str, root: Node, variables: frozenset[str] = frozenset()) -> None:
        self._set(text=text, root=root, variables=variables)

    def __repr__(self) -> str:  # the tree is left out, as it is long
        return f"Expr(text={self.text!r}, variables={self.variables!r})"

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Tokenizer


class _Token(_Value):
    __slots__ = ("kind", "text", "pos", "value")
    kind: str  # "num", "str", "name", "op", "end"
    text: str
    pos: int
    value: JSValue

    def __init__(self, kind: str, text: str, pos: int, value: JSValue = None) -> None:
        self._set(kind=kind, text=text, pos=pos, value=value)


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _tokenize(text: str) -> Iterator[_Token]:
    """Yield the tokens one at a time, so that errors are reported in reading order."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _JS_SPACE:
            i += 1
            continue
        if _is_digit(ch) or (ch == "." and i + 1 < n and _is_digit(text[i + 1])):
            tok = _number_token(text, i)
            yield tok
            i += len(tok.text)
            continue
        if ch in "'\"":
            tok = _string_token(text, i)
            yield tok
            i += len(tok.text)
            continue
        if _is_name_start(ch):
            j = i + 1
            while j < n and _is_name_char(text[j]):
                j += 1
            yield _Token("name", text[i:j], i)
            i = j
            continue
        for length in (4, 3, 2, 1):
            piece = text[i : i + length]
            if len(piece) != length:
                continue
            if piece == "?." and i + 2 < n and _is_digit(text[i + 2]):
                continue  # `a?.5:1` is a conditional with the number .5
            if piece in _FORBIDDEN:
                raise ExpressionError(text, i, _FORBIDDEN[piece])
            if piece in _OPERATORS:
                yield _Token("op", piece, i)
                i += length
                break
        else:
            raise ExpressionError(text, i, f"unexpected character {ch!r}")
    yield _Token("end", "", n)


def _number_token(text: str, i: int) -> _Token:
    m = _RE_NUMBER_TOKEN.match(text, i)
    assert m is not None  # the caller saw a digit or '.' followed by a digit
    literal = m.group()
    end = m.end()
    if end < len(text) and (_is_name_char(text[end]) or text[end] == "."):
        raise ExpressionError(
            text, end, f"unexpected {text[end]!r} right after the number {literal}"
        )
    if len(literal) > 1 and literal[0] == "0" and _is_digit(literal[1]):
        raise ExpressionError(
            text,
            i,
            f"numbers must not start with 0 ({literal!r} would be an octal number in "
            f"JavaScript); write {literal.lstrip('0') or '0'} or 0o{literal.lstrip('0') or '0'}",
        )
    return _Token("num", literal, i, _literal_value(literal))


def _literal_value(literal: str) -> float:
    if _RE_STR_NONDECIMAL.fullmatch(literal):
        base = {"x": 16, "b": 2, "o": 8}[literal[1].lower()]
        return _int_to_float(int(literal[2:], base))
    return float(literal)


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


_SIMPLE_ESCAPES: Final[Mapping[str, str]] = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _string_token(text: str, start: int) -> _Token:
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while True:
        if i >= n or text[i] in "\n\r\u2028\u2029":
            raise ExpressionError(text, start, f"unterminated string (missing closing {quote})")
        ch = text[i]
        if ch == quote:
            # "\uD83D\uDE00" is one character, as in JavaScript (which counts UTF-16 units)
            value = "".join(out).encode("utf-16-le", "surrogatepass")
            return _Token(
                "str", text[start : i + 1], start, value.decode("utf-16-le", "surrogatepass")
            )
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise ExpressionError(text, start, f"unterminated string (missing closing {quote})")
        esc = text[i + 1]
        i += 2
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == "0" and not (i < n and _is_digit(text[i])):
            out.append("\0")
        elif _is_digit(esc):
            raise ExpressionError(text, i - 2, f"octal escape '\\{esc}' is not allowed in strings")
        elif esc == "x":
            digits = text[i : i + 2]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                raise ExpressionError(text, i - 2, "'\\x' must be followed by 2 hex digits")
            out.append(chr(int(digits, 16)))
            i += 2
        elif esc == "u":
            m = re.compile(r"\{([0-9a-fA-F]{1,6})\}|([0-9a-fA-F]{4})").match(text, i)
            if m is None or int(m.group(1) or m.group(2), 16) > 0x10FFFF:
                raise ExpressionError(
                    text, i - 2, "'\\u' must be followed by 4 hex digits or {hex digits}"
                )
            out.append(chr(int(m.group(1) or m.group(2), 16)))
            i = m.end()
        elif esc == "\r":
            if i < n and text[i] == "\n":
                i += 1
        elif esc in "\n\u2028\u2029":
            pass  # line continuation
        else:
            out.append(esc)


# ---------------------------------------------------------------------------------------------
# Parser (recursive descent, one function per precedence level)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.tok = next(self.tokens)
        self.depth = 0
        self.names: set[str] = set()

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def advance(self) -> _Token:
        tok = self.tok
        if tok.kind != "end":
            self.tok = next(self.tokens)
        return tok

    def fail(self, tok: _Token, reason: str) -> ExpressionError:
        return ExpressionError(self.text, tok.pos, reason)

    def describe(self, tok: _Token) -> str:
        return "the end of the condition" if tok.kind == "end" else repr(tok.text)

    def expect(self, op: str, what: str) -> _Token:
        if not self.at(op):
            raise self.fail(self.tok, f"expected {what}, found {self.describe(self.tok)}")
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(self.tok, f"the condition is nested too deeply (over {_MAX_DEPTH})")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExpressionError(self.text, 0, "the condition is empty")
        node = self.conditional()
        if self.tok.kind != "end":
            tok = self.tok
            if tok.kind == "op" and tok.text == ",":
                raise self.fail(tok, "',' is only allowed between function arguments")
            if tok.kind == "op" and tok.text == ")":
                raise self.fail(tok, "unbalanced ')'")
            raise self.fail(
                tok, f"expected an operator or the end of the condition, found {tok.text!r}"
            )
        return node

    def conditional(self) -> Node:
        self.enter()
        test = self.logical_or()
        if self.at("?"):
            q = self.advance()
            then = self.conditional()
            self.expect(":", "':' of 'a ? b : c'")
            other = self.conditional()
            test = Conditional(test, then, other, q.pos)
        self.depth -= 1
        return test

    def logical_or(self) -> Node:
        node = self.logical_and()
        while self.at("||"):
            op = self.advance()
            node = Logical("||", node, self.logical_and(), op.pos)
        return node

    def logical_and(self) -> Node:
        node = self.equality()
        while self.at("&&"):
            op = self.advance()
            node = Logical("&&", node, self.equality(), op.pos)
        return node

    def equality(self) -> Node:
        node = self.relational()
        while self.at("==", "!=", "===", "!=="):
            op = self.advance()
            node = Binary(op.text, node, self.relational(), op.pos)
        return node

    def relational(self) -> Node:
        node = self.additive()
        while True:
            if self.tok.kind == "name" and self.tok.text in ("in", "instanceof"):
                raise self.fail(self.tok, f"the '{self.tok.text}' operator is not allowed")
            if not self.at("<", "<=", ">", ">="):
                return node
            op = self.advance()
            node = Binary(op.text, node, self.additive(), op.pos)

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.at("+", "-"):
            op = self.advance()
            node = Binary(op.text, node, self.multiplicative(), op.pos)
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.at("*", "/", "%"):
            op = self.advance()
            node = Binary(op.text, node, self.unary(), op.pos)
        return node

    def unary(self) -> Node:
        if self.at("!", "-", "+"):
            self.enter()
            op = self.advance()
            node: Node = Unary(op.text, self.unary(), op.pos)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.advance()
        node: Node
        if tok.kind in ("num", "str"):
            node = Const(tok.value, tok.pos)
        elif tok.kind == "name":
            node = self.name(tok)
        elif tok.kind == "op" and tok.text == "(":
            node = self.conditional()
            self.expect(")", "')'")
        else:
            raise self.fail(tok, f"expected a value, found {self.describe(tok)}")
        if self.at("("):
            raise self.fail(
                self.tok,
                "only the functions " + ", ".join(f"{f}()" for f in FUNCTIONS) + " can be called",
            )
        return node

    def name(self, tok: _Token) -> Node:
        name = tok.text
        if name in _CONSTANTS:
            return Const(_CONSTANTS[name], tok.pos)
        if name in _JS_KEYWORDS:
            raise self.fail(tok, f"the JavaScript keyword {name!r} is not allowed")
        if self.at("("):
            if name not in FUNCTIONS:
                raise self.fail(
                    tok,
                    f"unknown function {name}(); only "
                    + ", ".join(f"{f}()" for f in FUNCTIONS)
                    + " can be called",
                )
            self.advance()
            args: list[Node] = []
            if not self.at(")"):
                args.append(self.conditional())
                while self.at(","):
                    self.advance()
                    args.append(self.conditional())
            self.expect(")", f"')' closing {name}(")
            if len(args) > FUNCTIONS[name]:
                most = FUNCTIONS[name]
                raise self.fail(
                    tok,
                    f"{name}() takes at most {most} argument{'s' if most > 1 else ''}, "
                    f"got {len(args)}",
                )
            return Call(name, tuple(args), tok.pos)
        if name in FUNCTIONS:
            raise self.fail(tok, f"{name} is a function: call it, as in {name}(x)")
        self.names.add(name)
        return Var(name, tok.pos)


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Unary(operand=a):
            return (a,)
        case Binary(left=a, right=b) | Logical(left=a, right=b):
            return (a, b)
        case Conditional(test=a, then=b, other=c):
            return (a, b, c)
        case Call(args=args):
            return args
        case _:
            return ()


def _tree_depth(root: Node) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def parse_expression(text: str) -> Expr:
    """Parse a condition; raise :class:`ExpressionError` if it is not in the allowed subset."""
    if not isinstance(text, str):
        raise TypeError(f"a condition must be a string, not {type(text).__name__}")
    parser = _Parser(text)
    root = parser.parse()
    if _tree_depth(root) > _MAX_TREE_DEPTH:
        raise ExpressionError(
            text, 0, f"the condition is too long or nested too deeply (over {_MAX_TREE_DEPTH})"
        )
    return Expr(text, root, frozenset(parser.names))


# ---------------------------------------------------------------------------------------------
# JavaScript semantics


def is_true(value: object) -> bool:
    """JavaScript truthiness: false for ``false 0 -0 NaN "" null undefined``, true otherwise."""
    if value is None or isinstance(value, Undefined):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def to_js_number(value: JSValue) -> float:
    """JavaScript's ``Number(value)``."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, Undefined):
        return math.nan
    text = value.strip(_JS_SPACE)
    if text == "":
        return 0.0
    if _RE_STR_DECIMAL.fullmatch(text):
        return float(text)
    if _RE_STR_NONDECIMAL.fullmatch(text):
        return _literal_value(text)
    return math.nan


def _number_to_string(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _number_to_string(-x)
    if math.isinf(x):
        return "Infinity"
    sign, digit_tuple, exponent = Decimal(repr(x)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = exponent + k  # x = 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def to_js_string(value: JSValue) -> str:
    """JavaScript's ``String(value)``; numbers are formatted as JavaScript does (``3``, not ``3.0``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Undefined):
        return "undefined"
    return _number_to_string(float(value))


def _type_tag(value: JSValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, Undefined):
        return "undefined"
    return "number"


def _strict_equals(a: JSValue, b: JSValue) -> bool:
    if _type_tag(a) != _type_tag(b):
        return False
    return a == b  # floats: NaN != NaN and 0.0 == -0.0, as in JavaScript


def _loose_equals(a: JSValue, b: JSValue) -> bool:
    ta, tb = _type_tag(a), _type_tag(b)
    if ta == tb:
        return _strict_equals(a, b)
    nullish = ("null", "undefined")
    if ta in nullish or tb in nullish:
        return ta in nullish and tb in nullish
    if ta == "boolean":
        return _loose_equals(to_js_number(a), b)
    if tb == "boolean":
        return _loose_equals(a, to_js_number(b))
    # one is a number and the other a string
    return to_js_number(a) == to_js_number(b)


def _less_than(a: JSValue, b: JSValue) -> bool | None:
    """JavaScript's abstract relational comparison; None means 'undefined' (a NaN was involved)."""
    if isinstance(a, str) and isinstance(b, str):
        # JavaScript compares UTF-16 code units; big-endian UTF-16 bytes sort the same way.
        return a.encode("utf-16-be", "surrogatepass") < b.encode("utf-16-be", "surrogatepass")
    x, y = to_js_number(a), to_js_number(b)
    if math.isnan(x) or math.isnan(y):
        return None
    return x < y


def _divide(x: float, y: float) -> float:
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _remainder(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or y == 0:
        return math.nan
    if math.isinf(y) or x == 0:
        return x
    return math.fmod(x, y)


def _arith(op: str, a: JSValue, b: JSValue) -> JSValue:
    if op == "+":
        if isinstance(a, str) or isinstance(b, str):
            return to_js_string(a) + to_js_string(b)
        return to_js_number(a) + to_js_number(b)
    x, y = to_js_number(a), to_js_number(b)
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return _divide(x, y)
    return _remainder(x, y)


def _compare(op: str, a: JSValue, b: JSValue) -> bool:
    if op == "==":
        return _loose_equals(a, b)
    if op == "!=":
        return not _loose_equals(a, b)
    if op == "===":
        return _strict_equals(a, b)
    if op == "!==":
        return not _strict_equals(a, b)
    if op == "<":
        return _less_than(a, b) is True
    if op == ">":
        return _less_than(b, a) is True
    if op == "<=":
        return _less_than(b, a) is False
    return _less_than(a, b) is False  # ">="


def _parse_float(value: JSValue) -> float:
    text = to_js_string(value).lstrip(_JS_SPACE)
    m = _RE_STR_DECIMAL.match(text)
    return float(m.group()) if m else math.nan


def _to_int32(x: float) -> int:
    if math.isnan(x) or math.isinf(x):
        return 0
    n = int(math.trunc(x)) % 2**32
    return n - 2**32 if n >= 2**31 else n


_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


def _parse_int(value: JSValue, radix: JSValue) -> float:
    text = to_js_string(value).lstrip(_JS_SPACE)
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    base = _to_int32(to_js_number(radix))
    strip_prefix = True
    if base != 0:
        if base < 2 or base > 36:
            return math.nan
        strip_prefix = base == 16
    else:
        base = 10
    if strip_prefix and text[:2].lower() == "0x":
        text = text[2:]
        base = 16
    valid = _DIGITS[:base]
    end = 0
    while end < len(text) and text[end].isascii() and text[end].lower() in valid:
        end += 1
    if end == 0:
        return math.nan
    return sign * _int_to_float(int(text[:end], base))


def _call(func: str, args: list[JSValue]) -> JSValue:
    first: JSValue = args[0] if args else UNDEFINED
    if func == "Number":
        return to_js_number(first) if args else 0.0
    if func == "String":
        return to_js_string(first) if args else ""
    if func == "Boolean":
        return is_true(first)
    if func == "parseFloat":
        return _parse_float(first)
    return _parse_int(first, args[1] if len(args) > 1 else UNDEFINED)


def _from_python(name: str, value: object) -> JSValue:
    if isinstance(value, bool | str | float) or value is None:
        return value
    if isinstance(value, int):
        return _int_to_float(value)
    raise TypeError(
        f"variable {name!r} must be a str, int, float or bool, not {type(value).__name__}"
    )


class _Evaluator:
    def __init__(self, expr: Expr, variables: Mapping[str, str | int | float | bool]) -> None:
        self.expr = expr
        self.variables = variables

    def eval(self, node: Node) -> JSValue:
        match node:
            case Const(value=value):
                return value
            case Var(name=name, pos=pos):
                if name not in self.variables:
                    raise self.unknown(name, pos)
                return _from_python(name, self.variables[name])
            case Unary(op=op, operand=operand):
                value = self.eval(operand)
                if op == "!":
                    return not is_true(value)
                number = to_js_number(value)
                return -number if op == "-" else number
            case Logical(op=op, left=left, right=right):
                value = self.eval(left)
                if is_true(value) == (op == "||"):
                    return value
                return self.eval(right)
            case Conditional(test=test, then=then, other=other):
                return self.eval(then) if is_true(self.eval(test)) else self.eval(other)
            case Call(func=func, args=args):
                return _call(func, [self.eval(arg) for arg in args])
            case Binary(op=op, left=left, right=right):
                a = self.eval(left)
                b = self.eval(right)
                if op in ("+", "-", "*", "/", "%"):
                    return _arith(op, a, b)
                return _compare(op, a, b)
        raise AssertionError(f"unknown node {node!r}")  # pragma: no cover

    def unknown(self, name: str, pos: int) -> ExpressionError:
        known = sorted(self.variables)
        if not known:
            listing = "no variables are defined here"
        elif len(known) <= 20:
            listing = "defined variables: " + ", ".join(known)
        else:
            listing = f"{len(known)} variables are defined, e.g. " + ", ".join(known[:20])
        return ExpressionError(
            self.expr.text,
            pos,
            f"unknown variable {name!r}",
            hint=f'{listing}\n(quote the text if {name!r} is meant as a string: "{name}")',
        )


def evaluate(expression: str | Expr, variables: Mapping[str, str | int | float | bool]) -> JSValue:
    """Evaluate a condition with JavaScript's semantics and return its value (not a bool).

    ``variables`` are usually the component's environment, all strings, as in OPEN-WHEEL (which
    prepends ``let KEY="value";`` for each). ints and floats become JavaScript numbers. A name not
    in ``variables`` raises :class:`ExpressionError` when it is evaluated (``false && X`` does not
    evaluate ``X``). Use :func:`is_true` on the result to decide a branch.
    """
    expr = expression if isinstance(expression, Expr) else parse_expression(expression)
    return _Evaluator(expr, variables).eval(expr.root)


_SCRIPT_NAME = re.compile(r"[\w.\-]+\.\w+")


def looks_like_script_name(text: str) -> bool:
    """A condition such as ``check.sh`` that failed to parse was meant as a script file."""
    return _SCRIPT_NAME.fullmatch(text) is not None
