"""The one sandbox every BPMN/DMN script and expression runs in.

SpiffWorkflow's default ``PythonScriptEngine`` evaluates script tasks, gateway conditions, timer
expressions, DMN cells, message payloads and multi-instance settings with plain ``eval``/``exec``:
whoever can deploy (or edit) a process model gets the server process - imports, files, environment
variables, the database.  Here the code is compiled with RestrictedPython instead (no imports, no
``_``-names, guarded attribute/item/iteration access, whitelisted builtins), operations that can
exhaust memory or CPU inside a single C call are size-checked before they run, and every evaluation
has a wall-clock time limit.

Known limits: checks run between Python-level steps, so one C call over data that is already big
(``sorted`` of many long strings, ``str()`` of a huge list) cannot be interrupted, and memory
allocated within the time limit is not capped.  A hard guarantee needs a separate process.
"""

from __future__ import annotations

import _string  # the C helper behind string.Formatter; splits "a.b[0]" into its parts
import ast
import contextlib
import copy
import decimal
import functools
import json
import math
import operator
import re
import string
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.Limits import limited_builtins
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer
from RestrictedPython.Utilities import utility_builtins
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import _evaluator
from ._plain_expressions import NotPlain, evaluate_plain, execute_plain
from ._script_helpers import SPIFF_ARENA_HELPERS, ScriptHelper
from .errors import SandboxViolation, ScriptError, ScriptTimeout
from .working_days import add_working_days, is_working_day

SCRIPT_FILENAME = "<script>"
MAX_SIZE = 1_000_000  # items or characters one operation may produce
MAX_INT_BITS = 100_000  # ~30,000 digits: int division/conversion is quadratic beyond that
MAX_DECIMAL_DIGITS = 10_000  # Decimal -> int conversion is quadratic too
_DENIED_ATTRIBUTES = INSPECT_ATTRIBUTES | {"mro", "from_file", "clear_cache"}
_SEQUENCES = (str, bytes, list, tuple)
_monotonic = time.monotonic
_MISSING = object()


class _Timeout(BaseException):
    """Raised inside the script; BaseException so script ``except Exception`` cannot swallow it."""


class _State(threading.local):
    deadline: float = math.inf
    # The caller's clock (POSIX seconds, and when it was read here) while an evaluator serves it.
    clock: tuple[float, float] | None = None


_state = _State()


def _tick() -> bool:
    """Deadline check the compiler injects into every loop body, function, lambda and comprehension.

    Straight-line code is bounded by its length, so these are the only places a
    script can spend unbounded time in Python code. (``sys.settrace`` is not used:
    it costs several times more, replaces coverage's tracer, and CPython drops it
    whenever it raises, e.g. on RecursionError.)"""
    if _monotonic() > _state.deadline:
        raise _Timeout
    return True


def _check_size(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise SandboxViolation(f"{what} would be too large ({size} items, limit {MAX_SIZE})")


def _check_int_bits(bits: float, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise SandboxViolation(f"{what} would be too large (over {MAX_INT_BITS} bits)")


# Operators are compiled into calls to these so results are size-checked before they exist.
def _add(a: Any, b: Any, op: Callable[[Any, Any], Any] = operator.add) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_size(len(a) + len(b), "concatenation")
    return op(a, b)


def _mul(a: Any, b: Any, op: Callable[[Any, Any], Any] = operator.mul) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        _check_int_bits(a.bit_length() + b.bit_length(), "integer product")
    elif isinstance(a, _SEQUENCES) and isinstance(b, int):
        _check_size(len(a) * b, "repetition")
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        _check_size(len(b) * a, "repetition")
    return op(a, b)


def _pow(base: Any, exp: Any, mod: Any = None) -> Any:
    if mod is None and isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        _check_int_bits(exp if exp > MAX_INT_BITS else exp * math.log2(abs(base)), "power")
    return pow(base, exp, mod)


def _lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        _check_int_bits(a.bit_length() + b, "shift")
    return a << b


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):  # printf-style formatting: '%99999999d' % 1
        text = a if isinstance(a, str) else a.decode("latin-1")
        for match in _PERCENT_SPEC.finditer(text):
            for part in match.groups():
                if part == "*":
                    args = b if isinstance(b, tuple) else (b,)
                    _check_size(max((abs(x) for x in args if isinstance(x, int)), default=0), "format width")
                elif part:
                    _check_size(int(part), "format width")
    return a % b


_INPLACE = {
    "+=": functools.partial(_add, op=operator.iadd),
    "-=": operator.isub,
    "*=": functools.partial(_mul, op=operator.imul),
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": _mod,
    "**=": _pow,
    "<<=": _lshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    if op not in _INPLACE:
        raise SandboxViolation(f"operator {op} is not allowed")
    return _INPLACE[op](target, value)  # type: ignore[operator]


def _check_format_spec(spec: str) -> None:
    for digits in re.findall(r"\d+", spec):  # width/precision: f'{1:>9999999999}'
        _check_size(int(digits) if len(digits) < 10 else MAX_SIZE + 1, "formatted value")


class _SafeFormatter(string.Formatter):
    """str.format/format_map whose field lookups ('{0.attr}', '{0[key]}') go through the guards."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = _string.formatter_field_name_split(field_name)
        rest = list(rest)
        for is_attr, key in rest:  # refuse before any lookup, whatever the data
            if is_attr and (key.startswith("_") or key in _DENIED_ATTRIBUTES):
                raise SandboxViolation(f"access to {key!r} is not allowed")
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = _guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_format_spec(format_spec)
        return format(value, format_spec)


_FORMATTER = _SafeFormatter()


def _format_value(value: Any, conversion: int, spec: str) -> str:
    """Stands in for every f-string field, so its format spec is checked like str.format's."""
    conversions: dict[int, Callable[[Any], Any]] = {115: str, 114: repr, 97: ascii}
    convert = conversions.get(conversion, lambda v: v)
    value = convert(value)
    _check_format_spec(spec)
    return format(value, spec)


# Methods of str/bytes/int/list that can build a huge result in one C call, as guard(obj, method, ...).
def _pad(obj: Any, method: Callable[..., Any], width: int, *args: Any) -> Any:
    _check_size(width, "padded string")
    return method(width, *args)


def _join(obj: Any, method: Callable[..., Any], iterable: Iterable[Any]) -> Any:
    items = iterable if isinstance(iterable, (list, tuple)) else list(iterable)
    with contextlib.suppress(TypeError):  # non-string items: let join() raise its own error
        _check_size(sum(map(len, items)) + len(obj) * max(len(items) - 1, 0), "join() result")
    return method(items)


def _replace(obj: Any, method: Callable[..., Any], old: Any, new: Any, count: int = -1) -> Any:
    if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)) and len(new) > len(old):
        hits = obj.count(old) if old else len(obj) + 1
        hits = min(hits, count) if count >= 0 else hits
        _check_size(len(obj) + hits * (len(new) - len(old)), "replace() result")
    return method(old, new, count)


def _expandtabs(obj: Any, method: Callable[..., Any], tabsize: int = 8) -> Any:
    _check_size(len(obj) + obj.count("\t" if isinstance(obj, str) else b"\t") * max(tabsize, 0), "result")
    return method(tabsize)


def _translate(obj: Any, method: Callable[..., Any], table: Any, *args: Any) -> Any:
    values = table.values() if isinstance(table, dict) else table if isinstance(table, (list, tuple)) else ()
    longest = max((len(v) for v in values if isinstance(v, str)), default=1)
    _check_size(len(obj) * longest, "translate() result")
    return method(table, *args)


def _to_bytes(obj: Any, method: Callable[..., Any], length: int = 1, *args: Any, **kwargs: Any) -> Any:
    _check_size(length, "to_bytes() result")
    return method(length, *args, **kwargs)


def _extend(obj: Any, method: Callable[..., Any], iterable: Iterable[Any]) -> Any:
    if isinstance(iterable, _SEQUENCES):
        _check_size(len(obj) + len(iterable), "list")
    return method(iterable)


_METHOD_GUARDS: dict[str, tuple[tuple[type, ...], Callable[..., Any]]] = {
    "format": ((str,), lambda obj, method, *args, **kwargs: _FORMATTER.vformat(obj, args, kwargs)),
    "format_map": ((str,), lambda obj, method, mapping: _FORMATTER.vformat(obj, (), mapping)),
    "join": ((str, bytes), _join),
    "replace": ((str, bytes), _replace),
    "ljust": ((str, bytes), _pad),
    "rjust": ((str, bytes), _pad),
    "center": ((str, bytes), _pad),
    "zfill": ((str, bytes), _pad),
    "expandtabs": ((str, bytes), _expandtabs),
    "translate": ((str, bytes), _translate),
    "to_bytes": ((int,), _to_bytes),
    "extend": ((list,), _extend),
}


class _GuardedMethod:
    """A bound method behind its guard; unlike functools.partial it exposes no .func/.args."""

    __slots__ = ("_guard", "_method", "_obj")

    def __init__(self, guard: Callable[..., Any], obj: Any, method: Callable[..., Any]) -> None:
        self._guard, self._obj, self._method = guard, obj, method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._guard(self._obj, self._method, *args, **kwargs)


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``_getattr_`` and the script's ``getattr``: no ``_`` names, frames or code; guarded methods."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in _DENIED_ATTRIBUTES:
        raise SandboxViolation(f"access to {name!r} is not allowed")
    if name in _METHOD_GUARDS:
        types_, guard = _METHOD_GUARDS[name]
        if isinstance(obj, types_):
            return _GuardedMethod(guard, obj, getattr(obj, name))
        if isinstance(obj, type) and issubclass(obj, types_):  # unbound str.format('{0.__class__}', x)
            raise SandboxViolation(f"{obj.__name__}.{name}() must be called on a value")
    return getattr(obj, name, *default)


def _lazy(iterable: Iterable[Any]) -> Iterator[Any]:
    """Re-enter Python per item, so C consumers (list, max, sorted...) can be stopped by the limit."""
    for item in iterable:
        _tick()
        yield item


def _range(*args: int) -> Any:
    result = range(*args)
    try:
        return result if len(result) <= MAX_SIZE else _lazy(result)
    except OverflowError:
        return _lazy(result)


def _sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    if isinstance(start, (str, bytes)):
        raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
    if (
        isinstance(iterable, (list, tuple, range))
        and set(map(type, iterable)) <= {int, float, bool}
        and max(map(abs, iterable), default=0) < 2**64
    ):  # small numbers: C sum is safe and fast
        return sum(iterable, start)
    total = start
    for item in iterable:
        _tick()
        total = _add(total, item)
    return total


def _prod(iterable: Iterable[Any], /, *, start: Any = 1) -> Any:
    total = start
    for item in iterable:
        _tick()
        total = _mul(total, item)
    return total


def _round(number: Any, ndigits: int | None = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > 1000:  # round(5, -10**9) would compute 10**10**9
        raise SandboxViolation("round() to more than 1000 digits is not allowed")
    return round(number, ndigits)


def _small_args(func: Callable[..., Any], limit: int = 5000) -> Callable[..., Any]:
    def guarded(*args: Any) -> Any:
        if any(isinstance(arg, int) and arg > limit for arg in args):
            raise SandboxViolation(f"math.{func.__name__}() of numbers above {limit} is not allowed")
        return func(*args)

    return guarded


def _lcm(*integers: int) -> int:
    _check_int_bits(sum(abs(n).bit_length() for n in integers if isinstance(n, int)), "lcm")
    return math.lcm(*integers)


class _SafeModule(types.SimpleNamespace):
    """A module's public functions without its internals (__loader__, __spec__...)."""


_SAFE_MATH = _SafeModule(
    **{
        **{name: getattr(math, name) for name in dir(math) if not name.startswith("_")},
        "factorial": _small_args(math.factorial),
        "comb": _small_args(math.comb),
        "perm": _small_args(math.perm),
        "prod": _prod,
        "lcm": _lcm,
    }
)


class _DecimalMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, decimal.Decimal)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, decimal.Decimal)


class SafeDecimal(decimal.Decimal, metaclass=_DecimalMeta):
    """The scripts' ``Decimal``: refuses values whose exponent/digits make int() or ratios quadratic."""

    def __new__(cls, value: Any = "0", context: Any = None) -> decimal.Decimal:  # type: ignore[misc]
        result = decimal.Decimal(value, context)
        _sign, digits, exponent = result.as_tuple()
        if isinstance(exponent, int) and max(len(digits) + exponent, -exponent) > MAX_DECIMAL_DIGITS:
            raise SandboxViolation(f"Decimal with more than {MAX_DECIMAL_DIGITS} digits is not allowed")
        return result


class _Forbidden:
    """Stand-in for a dangerous builtin, so using it explains itself instead of a NameError."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise SandboxViolation(f"{self._name}() is not allowed")

    def __repr__(self) -> str:
        return f"<forbidden builtin {self._name}>"


_FORBIDDEN = (
    "id",  # a memory address says too much about the server
    "type",
    "vars",
    "globals",
    "locals",
    "open",
    "compile",
    "eval",
    "exec",
    "dir",
    "input",
    "breakpoint",
    "help",
    "exit",
    "quit",
    "memoryview",
    "bytearray",
    "object",
    "super",
    "classmethod",
    "staticmethod",
    "property",
    "setattr",
    "delattr",
    "iter",
    "aiter",
    "anext",
)


# Modules the C code behind the helpers imports by itself (date.today() imports
# time, datetime.strptime imports _strptime). Scripts cannot name __import__ (the
# compiler refuses underscore names and import statements), so only that C code
# ever reaches this.
_INTERNAL_IMPORTS = frozenset({"time", "_strptime"})


def _internal_import(name: str, *args: Any, **kwargs: Any) -> Any:
    if name not in _INTERNAL_IMPORTS:
        raise SandboxViolation(f"import of {name!r} is not allowed")
    return __import__(name, *args, **kwargs)


def _build_builtins() -> dict[str, Any]:
    allowed = {**safe_builtins, **limited_builtins}
    allowed.update({name: utility_builtins[name] for name in ("set", "frozenset")})
    for name in (
        "__build_class__",
        "_getattr_",
        "BaseException",
        "KeyboardInterrupt",
        "SystemExit",
        "GeneratorExit",
    ):
        allowed.pop(name, None)  # no classes; nothing that could catch _Timeout
    allowed.update(
        len=len,
        min=min,
        max=max,
        sum=_sum,
        sorted=sorted,
        any=any,
        all=all,
        abs=abs,
        list=list,
        dict=dict,
        set=set,
        tuple=tuple,
        str=str,
        int=int,
        float=float,
        bool=bool,
        isinstance=isinstance,
        next=next,
        frozenset=frozenset,
        range=_range,
        pow=_pow,
        getattr=_guarded_getattr,
        map=lambda func, *its: _lazy(map(func, *its)),
        filter=lambda func, it: _lazy(filter(func, it)),
        zip=lambda *its, strict=False: _lazy(zip(*its, strict=strict)),
        enumerate=lambda it, start=0: _lazy(enumerate(it, start)),
        reversed=lambda seq: _lazy(reversed(seq)),
        round=_round,
    )
    allowed.update({name: _Forbidden(name) for name in _FORBIDDEN})
    allowed["__import__"] = _internal_import
    return allowed


_GUARDS: dict[str, Any] = {
    "__builtins__": _build_builtins(),
    "_getattr_": _guarded_getattr,
    "_getitem_": operator.getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_apply_": lambda func, *args, **kwargs: func(*args, **kwargs),
    "_print_": PrintCollector,
    "_tick_": _tick,
    "_format_": _format_value,
    "_add_": _add,
    "_mul_": _mul,
    "_pow_": _pow,
    "_lshift_": _lshift,
    "_mod_": _mod,
}
_BINOP_HELPERS = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
    ast.Mod: "_mod_",
}


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    return ast.copy_location(ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[]), like)


def _tick_stmt(like: ast.AST) -> ast.Expr:
    return ast.copy_location(ast.Expr(_call("_tick_", [], like)), like)


def _leaving_finally(node: ast.AST, *, in_loop: bool) -> ast.stmt | None:
    """Find a ``return``/``break``/``continue`` that leaves a ``finally`` block (and so the time limit)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return None  # a return in a function defined there leaves only that function
    if isinstance(node, ast.Return) or (isinstance(node, ast.Break | ast.Continue) and not in_loop):
        return node
    nested_loop = in_loop or isinstance(node, ast.For | ast.While | ast.AsyncFor)
    for child in ast.iter_child_nodes(node):
        found = _leaving_finally(child, in_loop=nested_loop)
        if found is not None:
            return found
    return None


class _SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus size-checked operators, deadline ticks and clearer messages."""

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if name is not None and name.startswith("_") and name != "_":
            self.error(node, f"access to {name!r} is not allowed")
        else:
            super().check_name(node, name, allow_magic_methods)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> ast.AST:
        self.error(node, "import is not allowed")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "class definitions are not allowed")
        return node

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_") or node.attr in _DENIED_ATTRIBUTES:
            self.error(node, f"access to {node.attr!r} is not allowed")
            return node
        return super().visit_Attribute(node)

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        helper = _BINOP_HELPERS.get(type(node.op))
        return node if helper is None else _call(helper, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Subscript) and not any(
            isinstance(sub, (ast.Call, ast.NamedExpr, ast.Yield, ast.YieldFrom)) for sub in ast.walk(target)
        ):  # data['total'] += x  ->  data['total'] = data['total'] + x (target has no side effects)
            load = ast.Subscript(copy.deepcopy(target.value), copy.deepcopy(target.slice), ast.Load())
            value = ast.copy_location(ast.BinOp(ast.copy_location(load, target), node.op, node.value), node)
            return self.visit(ast.copy_location(ast.Assign(targets=[target], value=value), node))
        return super().visit_AugAssign(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = self.node_contents_visit(node)
        args = [node.value, ast.Constant(node.conversion), node.format_spec or ast.Constant("")]
        return ast.copy_location(ast.FormattedValue(_call("_format_", args, node), -1, None), node)

    def visit_Try(self, node: ast.Try) -> Any:
        for statement in node.finalbody:
            leaving = _leaving_finally(statement, in_loop=False)
            if leaving is not None:
                keyword = type(leaving).__name__.lower()
                self.error(leaving, f"'{keyword}' inside 'finally' is not allowed (it swallows errors)")
        return super().visit_Try(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        if node.type is None:  # a bare except would also catch the timeout
            node.type = ast.copy_location(ast.Name("Exception", ast.Load()), node)
        return super().visit_ExceptHandler(node)

    def _tick_body(self, node: Any) -> Any:
        node.body.insert(0, _tick_stmt(node))
        return node

    def visit_While(self, node: ast.While) -> Any:
        return self._tick_body(super().visit_While(node))

    def visit_For(self, node: ast.For) -> Any:
        return self._tick_body(super().visit_For(node))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        return self._tick_body(super().visit_FunctionDef(node))

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        node = super().visit_Lambda(node)  # type: ignore[assignment]
        node.body = ast.copy_location(ast.BoolOp(ast.And(), [_call("_tick_", [], node), node.body]), node)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node = super().visit_comprehension(node)  # type: ignore[assignment]
        node.ifs.insert(0, _call("_tick_", [], node.iter))
        return node

    def visit_Module(self, node: ast.Module) -> Any:
        return ast.fix_missing_locations(super().visit_Module(node))  # type: ignore[type-var]

    def visit_Expression(self, node: ast.Expression) -> Any:
        return ast.fix_missing_locations(super().visit_Expression(node))  # type: ignore[type-var]


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> types.CodeType:
    try:
        tree = ast.parse(source, SCRIPT_FILENAME, mode)
    except (SyntaxError, ValueError) as exc:
        message = f"SyntaxError: {getattr(exc, 'msg', exc)}"
        raise ScriptError(message, line=getattr(exc, "lineno", None)) from None
    compiler = compile_restricted_exec if mode == "exec" else compile_restricted_eval
    result = compiler(tree, filename=SCRIPT_FILENAME, policy=_SandboxPolicy)  # type: ignore[arg-type]
    if result.errors:
        match = re.match(r"Line (\d+): (.*)", result.errors[0], re.S)
        line, message = (int(match[1]), match[2]) if match else (None, result.errors[0])
        raise SandboxViolation(message, line=line)
    assert result.code is not None  # errors were raised above
    return result.code


def _script_line(exc: BaseException) -> int | None:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = tb.tb_lineno  # the innermost script frame wins
        tb = tb.tb_next
    return line


def _with_context(err: ScriptError, *, element: str | None = None, line: int | None = None) -> ScriptError:
    """Fill in element/line if unknown; re-initialising rebuilds the message that includes them."""
    ScriptError.__init__(
        err, err.message, element=err.element or element, line=err.line or line, detail=err.detail
    )
    return err


def _now() -> float:
    """The time scripts see: the caller's clock in an evaluator, this process's otherwise."""
    if _state.clock is None:
        return time.time()
    caller, read_at = _state.clock
    return caller + (_monotonic() - read_at)


@contextlib.contextmanager
def caller_clock(now: float) -> Iterator[None]:
    """Let scripts see the caller's time *now* (one engine step sees one clock, wherever it runs)."""
    _state.clock = (now, _monotonic())
    try:
        yield
    finally:
        _state.clock = None


class _DateMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__mro__[1])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__mro__[1])


class ClockDate(date, metaclass=_DateMeta):
    """The scripts' ``date``: plain dates, with ``today()`` read from the caller's clock."""

    def __new__(cls, *args: Any, **kwargs: Any) -> date:  # type: ignore[misc]
        return date(*args, **kwargs)

    @classmethod
    def today(cls) -> date:  # type: ignore[override]
        return date.fromtimestamp(_now())


class ClockDatetime(datetime, metaclass=_DateMeta):
    """The scripts' ``datetime``: plain datetimes, with ``now()``/``today()`` from the caller's clock."""

    def __new__(cls, *args: Any, **kwargs: Any) -> datetime:  # type: ignore[misc]
        return datetime(*args, **kwargs)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.fromtimestamp(_now(), tz)

    @classmethod
    def today(cls) -> datetime:  # type: ignore[override]
        return datetime.fromtimestamp(_now())

    @classmethod
    def utcnow(cls) -> datetime:  # type: ignore[override]
        return datetime.fromtimestamp(_now(), UTC).replace(tzinfo=None)


def _json_loads(text: str | bytes) -> Any:
    return json.loads(text)


def _json_dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    if indent is not None:
        _check_size(indent, "indent")
    return json.dumps(value, indent=indent, sort_keys=sort_keys)


# spiff-arena's scripts read a service task's answer with json.loads(result["body"]).
_SAFE_JSON = _SafeModule(loads=_json_loads, dumps=_json_dumps)

_HELPERS: dict[str, Any] = {
    "date": ClockDate,
    "datetime": ClockDatetime,
    "timedelta": timedelta,
    "Decimal": SafeDecimal,
    "math": _SAFE_MATH,
    "ZoneInfo": ZoneInfo,
    # Service levels in working days: weekends and the jurisdiction's public holidays are skipped.
    "add_working_days": add_working_days,
    "is_working_day": is_working_day,
    "json": _SAFE_JSON,
}

# The names scripts see besides task data: the helpers above, ``parameters`` (the organisation's
# dated values, which the engine adds as an extra global), spiff-arena's helpers
# (``get_current_user``..., extra globals too: engine/_script_helpers.py) and the builtins scripts may call
# (``len``, ``sum``, ``Exception``...; not the forbidden ones, which no script can use anyway).
# Data that comes from outside the model (a task submission, start data, a message payload, an
# admin's correction) may not use these names as top-level keys: a script reading ``parameters``
# must get the organisation's values, never what a user typed. The sandbox also lets its own
# names win over task data of the same name (see SandboxedEnvironment), in case such data got in
# some other way.
RESERVED_DATA_NAMES: frozenset[str] = frozenset(
    {*_HELPERS, "parameters", *SPIFF_ARENA_HELPERS}
    | {
        name
        for name, value in _GUARDS["__builtins__"].items()
        if not name.startswith("_") and not isinstance(value, _Forbidden)
    }
)


class InlineEnvironment(BasePythonScriptEngineEnvironment):
    """Runs scripts/expressions against task data like ``TaskDataEnvironment``, but sandboxed.

    This is the first wall only, in the calling process: the evaluator processes
    use it (see :mod:`engine._evaluator`); everything else uses
    :class:`SandboxedEnvironment`, which adds the second.

    ``evaluate`` returns the expression's value; ``execute`` copies the variables a script assigns
    (or deletes) back into ``context`` and leaves out functions, modules and helpers.  The
    sandbox's own names (:data:`RESERVED_DATA_NAMES` and the extra globals) win over task data
    of the same name: a data key ``parameters`` or ``len`` is neither seen by scripts nor
    replaced by them, and a script that assigns such a name keeps it to itself (it never becomes
    task data).  Errors are raised as ``ScriptError``/``SandboxViolation``/``ScriptTimeout``; a
    failed script leaves ``context``'s top-level variables unchanged.
    """

    def __init__(self, *, time_limit: float = 1.0, extra_globals: Mapping[str, Any] | None = None) -> None:
        super().__init__({**_HELPERS, **(extra_globals or {})})
        self.time_limit = time_limit
        self._own_names = RESERVED_DATA_NAMES | frozenset(self.globals)

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        """Return the value of ``expression`` evaluated against ``context``."""
        return self._run(_compile(expression, "eval"), self._namespace(context, external_context), "eval")

    def execute(
        self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> bool:
        """Run ``script``; the variables it assigns end up in ``context``."""
        namespace = self._namespace(context, external_context)
        self._run(_compile(script, "exec"), namespace, "exec")
        own = self._own_names
        for key in [key for key in context if key not in namespace and key not in own]:
            del context[key]  # the script used `del`
        external = external_context or {}
        for key, value in namespace.items():
            if key in own or key in _GUARDS or (key.startswith("_") and key != "_" and key not in context):
                continue
            if key not in context and value is external.get(key, _MISSING):
                continue  # an untouched external-context entry
            if callable(value) or isinstance(value, (_SafeModule, types.ModuleType, types.GeneratorType)):
                context.pop(key, None)  # like TaskDataEnvironment: no functions/modules in task data
            else:
                context[key] = value
        return True

    def _namespace(
        self, context: Mapping[str, Any], external_context: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        namespace = dict(external_context or {})
        namespace.update(context)
        for name in self._own_names.intersection(namespace):
            del namespace[name]  # a builtin is looked up only when no global has its name
        namespace.update(self.globals)  # the sandbox's own names win over data
        namespace.update(_GUARDS)  # last: data can never replace the guards
        return namespace

    def _run(self, code: types.CodeType, namespace: dict[str, Any], mode: str) -> Any:
        outer_deadline = _state.deadline  # nested evaluations may not extend the outer limit
        try:
            with decimal.localcontext() as ctx:  # bound Decimal exponents, see SafeDecimal
                ctx.prec = min(ctx.prec, MAX_DECIMAL_DIGITS)
                ctx.Emax, ctx.Emin = min(ctx.Emax, MAX_DECIMAL_DIGITS), max(ctx.Emin, -MAX_DECIMAL_DIGITS)
                _state.deadline = min(outer_deadline, _monotonic() + self.time_limit)
                try:
                    return eval(code, namespace) if mode == "eval" else exec(code, namespace)
                finally:
                    _state.deadline = outer_deadline
        except _Timeout as exc:
            raise ScriptTimeout(
                f"script exceeded the time limit of {self.time_limit:g}s", line=_script_line(exc)
            ) from None
        except ScriptError as err:
            raise _with_context(err, line=_script_line(err)) from err.__cause__
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ScriptError(message, line=_script_line(exc)) from exc


def _code_names(code: types.CodeType) -> frozenset[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _code_names(constant)
    return frozenset(names)


@functools.lru_cache(maxsize=4096)
def _names_in(source: str, mode: str) -> frozenset[str]:
    return _code_names(_compile(source, mode))


def _shipped(value: Any) -> Any:
    # A lazily loaded mapping (the organisation's parameters) travels as its values, a
    # helper (engine._script_helpers) as its data.
    if isinstance(value, ScriptHelper):
        return value.shipped()
    return dict(value) if isinstance(value, Mapping) else value


class SandboxedEnvironment(InlineEnvironment):
    """The sandbox with both walls: RestrictedPython, evaluated in an evaluator process.

    The source is compiled here first, so a syntax error or a refused construct
    costs no round trip; then the expression or script runs in a process with
    CPU-time and memory limits (:mod:`engine._evaluator`), against a copy of
    the task data, and ``execute`` puts the data the script left back into
    ``context``. An extra global (``parameters``) is sent only when the code
    names it, so most evaluations never load it.
    """

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        """Return the value of ``expression`` evaluated against ``context``.

        A plain expression (a comparison of task data, see :mod:`engine._plain_expressions`)
        is evaluated in this process: it can do nothing an evaluator would have to stop.
        """
        names = _names_in(expression, "eval")  # refuses what the sandbox refuses, before anything runs
        try:
            return evaluate_plain(expression, context, external_context, self._own_names)
        except NotPlain:
            pass
        return _evaluator.evaluate(self._request("eval", expression, context, external_context, names))

    def execute(
        self, script: str, context: dict[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> bool:
        """Run ``script``; the variables it assigns end up in ``context``.

        A plain script (assignments of plain expressions, see :mod:`engine._plain_expressions`)
        runs in this process.
        """
        names = _names_in(script, "exec")  # refuses what the sandbox refuses, before anything runs
        try:
            context.update(execute_plain(script, context, external_context, self._own_names))
            return True
        except NotPlain:
            pass
        result = _evaluator.evaluate(self._request("exec", script, context, external_context, names))
        context.clear()
        context.update(result)
        return True

    def decide(self, table: Any, context: dict[str, Any], *, element: str | None) -> dict[str, Any]:
        """Return the outputs of decision *table* for *context*, the whole table in one evaluation."""
        names = frozenset(name for name in self._extra if name in _table_text(table))
        request = _evaluator.Request(
            kind="decide",
            time_limit=self.time_limit,
            context=dict(context),
            extra_globals={name: _shipped(self.globals[name]) for name in names},
            table=table,
            element=element,
        )
        result: dict[str, Any] = _evaluator.evaluate(request)
        return result

    @functools.cached_property
    def _extra(self) -> frozenset[str]:
        return frozenset(self.globals) - frozenset(_HELPERS)

    def _request(
        self,
        kind: str,
        source: str,
        context: Mapping[str, Any],
        external_context: Mapping[str, Any] | None,
        names: frozenset[str],
    ) -> _evaluator.Request:
        return _evaluator.Request(
            kind=kind,
            time_limit=self.time_limit,
            source=source,
            context=dict(context),
            external=dict(external_context) if external_context else None,
            extra_globals={name: _shipped(self.globals[name]) for name in self._extra & names},
        )


def _table_text(table: Any) -> str:
    """Every expression of a decision table, to see which extra globals it names."""
    parts = [str(getattr(i, "expression", "") or "") for i in getattr(table, "inputs", [])]
    for rule in getattr(table, "rules", []):
        for entry in [*getattr(rule, "inputEntries", []), *getattr(rule, "outputEntries", [])]:
            parts.extend(str(x) for x in (getattr(entry, "lhs", None) or []))
            parts.append(str(getattr(entry, "text", "") or ""))
    return "\n".join(parts)


class _Values(Mapping[str, Any]):
    """An extra global's values in the evaluator, missing keys explained as the engine explains them."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._singular = name[:-1] if name.endswith("s") else name
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"no {self._singular} {key!r} is set for this organisation") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _DecisionTask:
    """What SpiffWorkflow's DMN engine reads of a task, in the evaluator."""

    def __init__(self, data: dict[str, Any], script_engine: Any, element: str | None) -> None:
        self.data = data
        self.workflow = types.SimpleNamespace(
            script_engine=script_engine, spec=types.SimpleNamespace(file=None)
        )
        self.workflow.top_workflow = self.workflow
        self.task_spec = types.SimpleNamespace(bpmn_id=element, bpmn_name=element, name=element)


def evaluate_here(request: _evaluator.Request) -> Any:
    """Carry out an evaluator request in this process, behind the first wall only.

    :raises ScriptError: as the sandbox raises it, with the line of the script.
    """
    with caller_clock(request.now):
        return _evaluate_here(request)


def _evaluate_here(request: _evaluator.Request) -> Any:
    extra = {
        name: _Values(name, value) if isinstance(value, Mapping) else value
        for name, value in request.extra_globals.items()
    }
    environment = InlineEnvironment(time_limit=request.time_limit, extra_globals=extra)
    if request.kind == "eval":
        return environment.evaluate(request.source, request.context, request.external)
    if request.kind == "exec":
        environment.execute(request.source, request.context, request.external)
        return request.context
    if request.kind == "decide":
        engine = _InlineScriptEngine(environment)
        task = _DecisionTask(request.context, engine, request.element)
        try:
            return DMNEngine(request.table).result(task)
        except SpiffWorkflowException as exc:
            cause = getattr(exc, "exception", None)
            notes = "; ".join(getattr(exc, "notes", []) or [])
            message = getattr(cause, "message", None) or str(exc)
            line = getattr(cause, "line", None)
            raise ScriptError(f"{message} ({notes})" if notes else message, line=line) from None
        except RecursionError:
            raise ScriptError("the decision table nests too deep to evaluate") from None
    raise ScriptError(f"unknown evaluation {request.kind!r}")


class SandboxedScriptEngine(PythonScriptEngine):
    """SpiffWorkflow script engine whose scripts and expressions all run in ``SandboxedEnvironment``.

    Sandbox errors reach SpiffWorkflow as ``WorkflowTaskException`` (so the task goes to ERROR)
    with the original ``ScriptError`` as its ``exception`` attribute.
    """

    def __init__(
        self,
        *,
        time_limit: float = 1.0,
        extra_globals: Mapping[str, Any] | None = None,
        environment: InlineEnvironment | None = None,
    ) -> None:
        super().__init__(
            environment=environment
            or SandboxedEnvironment(time_limit=time_limit, extra_globals=extra_globals)
        )

    def decide(self, task: Any, table: Any) -> dict[str, Any]:
        """Return decision *table*'s outputs for *task*, evaluated as a whole in an evaluator."""
        element = getattr(task.task_spec, "bpmn_id", None)
        try:
            if isinstance(self.environment, SandboxedEnvironment):
                return self.environment.decide(table, task.data, element=element)
            return DMNEngine(table).result(task)  # type: ignore[no-any-return]
        except ScriptError as err:
            raise _task_exception(task, "", err) from err

    def validate(self, expression: str) -> None:
        """Raise ``SyntaxError`` unless ``expression`` is a Python expression (DMN relies on it)."""
        ast.parse(expression, mode="eval")

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptError as err:
            raise _task_exception(task, expression, err) from err

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context))
        except ScriptError as err:
            raise _task_exception(task, script, err) from err


class IsolatedDecisionEngine(DMNEngine):
    """SpiffWorkflow's DMN engine, but a sandboxed workflow evaluates the whole table in an evaluator.

    One round trip per decision instead of one per cell, and SpiffWorkflow's own
    preprocessing of the cells (a regular expression that is quadratic in a
    cell's length) runs there too, under the evaluator's limits.
    """

    def result(self, task: Any) -> dict[str, Any]:
        script_engine = task.workflow.script_engine
        if isinstance(script_engine, SandboxedScriptEngine):
            return script_engine.decide(task, self.decision_table)
        return super().result(task)  # type: ignore[no-any-return]


class _InlineScriptEngine(SandboxedScriptEngine):
    """The script engine of an evaluator process: the first wall, in that process."""

    def __init__(self, environment: InlineEnvironment) -> None:
        super().__init__(environment=environment)


def _task_exception(task: Any, source: str, err: ScriptError) -> WorkflowTaskException:
    _with_context(err, element=getattr(task.task_spec, "bpmn_id", None))
    lines = source.splitlines()
    error_line = lines[err.line - 1] if err.line and err.line <= len(lines) else ""
    wrapped = WorkflowTaskException(
        str(err), task=task, exception=err, line_number=err.line, error_line=error_line
    )
    wrapped.exception = err  # WorkflowTaskException keeps only the class name; callers want the error
    if isinstance(err.__cause__, NameError):
        hint = WorkflowTaskException.did_you_mean_from_name_error(err.__cause__, list(task.data))
        if hint:
            wrapped.add_note(hint.strip())
    return wrapped
