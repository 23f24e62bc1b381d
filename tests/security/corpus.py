"""The escape corpus of issue 8: what a process owner of one organisation might write to get out.

Every record is one payload and the place in a process model it goes:

- ``script``: the text of a script task;
- ``condition``: the condition of a gateway's sequence flow;
- ``dmn_cell``: an input cell of a decision table;
- ``timer``: the ``timeDuration`` expression of a timer event;
- ``due_in``: a user task's ``dueIn`` property;
- ``message_payload``: the payload expression of a message throw event (a literal payload
  is also sent through :func:`engine.send_message`, the API's way in);
- ``multi_instance``: a multi-instance task's ``loopCardinality`` (or, with
  ``setting="completionCondition"``, its completion condition);
- ``form_schema``: the JSON Schema of a user task's form (``submission`` is then sent to it).

``{marker}`` in a source stands for a file path unique to the payload's test: an escape
would create that file, and the test checks that it does not exist. ``expensive`` payloads
burn CPU or memory until a limit stops them (one C call the first wall cannot interrupt, or a
loop it stops at the time limit); their tests are bounded in time and marked slow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Place = Literal[
    "script", "condition", "dmn_cell", "timer", "due_in", "message_payload", "multi_instance", "form_schema"
]

# The payloads issue 8 names, shared by the corpus and the test under load.
MODULAR_POWER = "pow(3, 2**99999, 2**99999 + 1)"
HASH_COLLISIONS = "{i * (2**61 - 1) for i in range(60000)}"
MEMORY_BOMB = "('{0:>999999}' * 2000).format(1)"
QUADRATIC_DMN_CELL = "?" * 60000
# Two numbers of 8 and 4 million bits, built without the size-checked operators; their `%` is
# one quadratic C call (the first wall checks `*`, `**` and `<<`, not `%`).
BIG_INT_MODULO = (
    "a = int.from_bytes(b'\\xff' * 1000000, 'big')\nb = int.from_bytes(b'\\xfe' * 500000, 'big')\nx = a % b"
)
FSTRING_BOMB = 'x = f"' + "{1:>999999}" * 2000 + '"'


@dataclass(frozen=True)
class Payload:
    id: str
    place: Place
    source: str
    attempts: str
    expensive: bool = False
    setting: str = "loopCardinality"
    submission: dict[str, Any] | None = field(default=None)


def _schema(**properties: Any) -> str:
    return json.dumps({"type": "object", "properties": properties})


CORPUS: tuple[Payload, ...] = (
    # -- one C call: only the second wall (the evaluator's limits) stops these ----------------
    Payload("pow-modular", "script", f"x = {MODULAR_POWER}", "a minute of CPU in one pow()", True),
    Payload(
        "hash-collisions-set",
        "script",
        "xs = [i * (2**61 - 1) for i in range(60000)]\nx = len(set(xs))",
        "quadratic set() of 60 000 hash-colliding integers in one C call",
        True,
    ),
    Payload(
        "hash-collisions-comprehension",
        "script",
        f"x = len({HASH_COLLISIONS})",
        "quadratic set comprehension of colliding integers",
        True,
    ),
    Payload("big-int-modulo", "script", BIG_INT_MODULO, "quadratic % of two huge integers", True),
    Payload("memory-bomb-format", "script", f"x = {MEMORY_BOMB}", "3.9 GB string from str.format", True),
    Payload("fstring-bomb", "script", FSTRING_BOMB, "an f-string of 2 000 fields of 1 MB", True),
    Payload(
        "nested-list-bomb",
        "script",
        "x = [[0] * 999999 for _ in range(2000)]",
        "16 GB of lists, each under the size check",
        True,
    ),
    # -- the deadline and attempts to outlive it -------------------------------------------------
    Payload("while-true", "script", "while True:\n    pass", "an endless loop", True),
    Payload(
        "return-in-finally",
        "script",
        "def f():\n    try:\n        while True:\n            pass\n    finally:\n        return 1\nx = f()",
        "swallow the timeout with return in finally",
    ),
    Payload(
        "break-in-finally",
        "script",
        "while True:\n    try:\n        while True:\n            pass\n    finally:\n        break",
        "swallow the timeout with break in finally",
    ),
    Payload(
        "except-baseexception",
        "script",
        "try:\n    while True:\n        pass\nexcept BaseException:\n    x = 1",
        "catch the timeout with except BaseException",
        True,
    ),
    Payload(
        "bare-except",
        "script",
        "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass",
        "catch the timeout with a bare except, again and again",
        True,
    ),
    Payload("recursion", "script", "def f():\n    return f()\nx = f()", "unbounded recursion"),
    Payload("range-materialised", "script", "x = list(range(10**9))", "a list of a billion items", True),
    Payload("max-of-huge-range", "script", "x = max(range(10**18))", "a C loop over 10**18 items", True),
    # -- size bombs the first wall checks before they exist ---------------------------------------
    Payload("list-repeat", "script", "x = [0] * 10**9", "8 GB list"),
    Payload("str-repeat", "script", "x = 'a' * 10**10", "10 GB string"),
    Payload("list-repeat-twice", "script", "x = [1] * 999999 * 999999", "repetition of a repetition"),
    Payload("power-tower", "script", "x = 2 ** 10**10", "a ten-billion-bit integer"),
    Payload("shift", "script", "x = 1 << 10**10", "a ten-billion-bit integer by shifting"),
    Payload("big-int-modulo-power", "script", "x = (10**100000 + 1) % 7", "% of a 330 000-bit integer"),
    Payload("percent-width", "script", "x = '%999999999d' % 1", "printf-style width bomb"),
    Payload("percent-star-width", "script", "x = '%*d' % (999999999, 1)", "printf-style * width bomb"),
    Payload("format-width", "script", "x = '{0:>9999999999}'.format(1)", "str.format width bomb"),
    Payload("join-bomb", "script", "x = 'a'.join(['b' * 999999] * 1000)", "1 GB join()"),
    Payload("replace-bomb", "script", "x = ('a' * 999999).replace('a', 'aaaa')", "4 MB replace()"),
    Payload("decimal-exponent", "script", "x = Decimal('1e999999999') + 1", "Decimal exponent bomb"),
    Payload("decimal-power", "script", "x = Decimal(10) ** 999999999", "Decimal power bomb"),
    Payload("int-from-long-text", "script", "x = int('9' * 100000)", "quadratic str -> int"),
    Payload("factorial", "script", "x = math.factorial(10**7)", "a huge factorial in one C call"),
    # -- classic escapes ---------------------------------------------------------------------------
    Payload("dunder-import", "script", "__import__('os').system('touch {marker}')", "run a shell command"),
    Payload("import-os", "script", "import os\nos.system('touch {marker}')", "import a module"),
    Payload("from-import", "script", "from os import system\nsystem('touch {marker}')", "from-import"),
    Payload("socket", "script", "s = __import__('socket').create_connection(('127.0.0.1', 9))", "network"),
    Payload("subclasses", "script", "x = ().__class__.__bases__[0].__subclasses__()", "walk to object"),
    Payload(
        "getattr-globals",
        "script",
        "def g():\n    pass\nx = getattr(g, '__globals__')",
        "a function's globals through getattr",
    ),
    Payload("getattr-self", "script", "x = getattr(len, '__self__')", "the builtins module via __self__"),
    Payload("format-walk", "script", "x = '{0.__class__}'.format(1)", "format-string attribute walk"),
    Payload(
        "format-walk-globals",
        "script",
        "f = lambda: 0\nx = '{0.__globals__[os]}'.format(f)",
        "format-string walk to globals",
    ),
    Payload(
        "format-map-walk", "script", "x = '{a.__class__.__mro__}'.format_map({'a': 1})", "format_map walk"
    ),
    Payload("unbound-format", "script", "x = str.format('{0.__class__}', 1)", "unbound str.format walk"),
    Payload("fstring-walk", "script", "x = f'{(1).__class__}'", "f-string attribute walk"),
    Payload("generator-frame", "script", "g = (x for x in [])\nx = g.gi_frame", "generator frame walk"),
    Payload(
        "generator-frame-getattr",
        "script",
        "g = (x for x in [1])\nx = getattr(g, 'gi_frame').f_globals",
        "generator frame through getattr",
    ),
    Payload("lambda-code", "script", "x = getattr(lambda: 0, 'func_code')", "a function's code object"),
    Payload("type", "script", "x = type(1)", "the type of a value"),
    Payload("type-three-args", "script", "x = type('X', (), {})", "build a class"),
    Payload("class-definition", "script", "class X:\n    pass", "define a class"),
    Payload("id", "script", "x = id(1)", "read a memory address"),
    Payload("open-read", "script", "x = open('/etc/passwd').read()", "read a file"),
    Payload("open-write-marker", "script", "open('{marker}', 'w').write('escaped')", "write a file"),
    Payload("eval", "script", "x = eval('1 + 1')", "eval"),
    Payload("exec", "script", "exec('import os')", "exec"),
    Payload("compile", "script", "x = compile('1', 'f', 'eval')", "compile"),
    Payload("globals", "script", "x = globals()", "the script's globals"),
    Payload("vars", "script", "x = vars()", "vars()"),
    Payload("locals", "script", "x = locals()", "locals()"),
    Payload("builtins", "script", "x = __builtins__", "the builtins mapping"),
    Payload("dir", "script", "x = dir()", "dir()"),
    Payload(
        "datetime-globals",
        "script",
        "x = datetime.now().__class__.__init__.__globals__",
        "module globals through a helper's method",
    ),
    Payload(
        "datetime-globals-getattr",
        "script",
        "x = getattr(getattr(getattr(datetime.now(), '__class__'), '__init__'), '__globals__')",
        "the same walk through getattr",
    ),
    Payload("other-organisation-parameter", "script", "x = parameters['south_secret']", "south's parameter"),
    Payload("parameters-internals", "script", "x = parameters._values", "the parameters mapping's insides"),
    # -- gateway conditions --------------------------------------------------------------------
    Payload(
        "condition-import",
        "condition",
        "__import__('os').system('touch {marker}') == 0",
        "shell in condition",
    ),
    Payload(
        "condition-subclasses", "condition", "len(().__class__.__subclasses__()) > 0", "walk in condition"
    ),
    Payload(
        "condition-open", "condition", "open('{marker}', 'w') is not None", "write a file in a condition"
    ),
    Payload("condition-pow", "condition", f"{MODULAR_POWER} > 0", "long C call in a condition", True),
    Payload("condition-str-repeat", "condition", "'a' * 10**10 == ''", "size bomb in a condition"),
    # -- decision table cells --------------------------------------------------------------------
    Payload("dmn-question-marks", "dmn_cell", QUADRATIC_DMN_CELL, "quadratic cell preprocessing", True),
    Payload("dmn-import", "dmn_cell", "__import__('os').system('touch {marker}')", "shell in a cell"),
    Payload("dmn-open", "dmn_cell", "open('{marker}', 'w')", "write a file in a cell"),
    Payload("dmn-pow", "dmn_cell", MODULAR_POWER, "long C call in a cell", True),
    Payload("dmn-mro", "dmn_cell", "().__class__.__mro__", "walk in a cell"),
    Payload("dmn-hash-collisions", "dmn_cell", f"len({HASH_COLLISIONS})", "colliding set in a cell", True),
    # -- timer expressions --------------------------------------------------------------------------
    Payload("timer-import", "timer", "__import__('os').system('touch {marker}')", "shell in a timer"),
    Payload("timer-open", "timer", "open('{marker}', 'w').write('PT1S')", "write a file in a timer"),
    Payload("timer-pow", "timer", f"'PT' + str({MODULAR_POWER} % 10) + 'S'", "long C call in a timer", True),
    Payload("timer-big-power", "timer", "'P' + str(10**100000) + 'D'", "huge number in a timer"),
    Payload("timer-far-future", "timer", "'P' + str(99999999) + 'Y'", "date arithmetic for hours"),
    Payload("timer-long-digits", "timer", "'PT' + '9' * 100000 + 'S'", "a duration of 100 000 digits"),
    # -- due dates ------------------------------------------------------------------------------------
    Payload("due-in-import", "due_in", "__import__('os').system('touch {marker}')", "shell in dueIn"),
    Payload("due-in-open", "due_in", "open('{marker}', 'w')", "write a file in dueIn"),
    Payload("due-in-far-future", "due_in", "'P' + str(99999999) + 'Y'", "a due date of 100 million years"),
    Payload("due-in-big-power", "due_in", "10**100000", "huge number in dueIn"),
    # Not starting with "P": deploy takes a dueIn that does so for an unquoted duration.
    Payload("due-in-pow", "due_in", f"1 + {MODULAR_POWER}", "long C call in dueIn", True),
    # -- message payloads -----------------------------------------------------------------------------
    Payload(
        "message-import",
        "message_payload",
        "{'x': __import__('os').system('touch {marker}')}",
        "shell in a payload",
    ),
    Payload("message-open", "message_payload", "{'x': open('{marker}', 'w')}", "write a file in a payload"),
    Payload("message-pow", "message_payload", f"{{'x': {MODULAR_POWER}}}", "long C call in a payload", True),
    Payload("message-str-repeat", "message_payload", "{'x': 'a' * 10**10}", "size bomb in a payload"),
    Payload("message-memory-bomb", "message_payload", f"{{'x': {MEMORY_BOMB}}}", "memory bomb payload", True),
    Payload(
        "message-sets-parameters",
        "message_payload",
        "{'parameters': {'threshold': 0}}",
        "replace the organisation's parameters with a message",
    ),
    Payload(
        "message-sets-underscore",
        "message_payload",
        "{'_getattr_': 'x'}",
        "replace a sandbox guard with a message",
    ),
    # -- multi-instance settings ----------------------------------------------------------------------
    Payload(
        "mi-import", "multi_instance", "__import__('os').system('touch {marker}')", "shell in cardinality"
    ),
    Payload("mi-open", "multi_instance", "len(open('{marker}', 'w').name)", "write a file in cardinality"),
    Payload("mi-billion", "multi_instance", "10**9", "a billion task instances"),
    Payload("mi-power-tower", "multi_instance", "2 ** 10**10", "a huge cardinality"),
    Payload("mi-pow", "multi_instance", f"{MODULAR_POWER} % 3 + 1", "long C call in cardinality", True),
    Payload(
        "mi-completion-import",
        "multi_instance",
        "__import__('os').system('touch {marker}') == 0",
        "shell in a completion condition",
        setting="completionCondition",
    ),
    # -- form schemas -----------------------------------------------------------------------------------
    Payload(
        "form-remote-ref",
        "form_schema",
        _schema(note={"$ref": "http://127.0.0.1:9/evil.schema.json"}),
        "make the server fetch a URL on every validation",
    ),
    Payload(
        "form-file-ref", "form_schema", _schema(note={"$ref": "file:///etc/passwd"}), "read a server file"
    ),
    Payload(
        "form-recursive-ref",
        "form_schema",
        _schema(note={"$ref": "#"}),
        "a schema containing itself: validation and rendering recurse without end",
    ),
    Payload(
        "form-ref-expansion",
        "form_schema",
        json.dumps(
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/d9"}},
                "$defs": {
                    "d0": {"type": "string"},
                    **{
                        f"d{i}": {
                            "type": "object",
                            "properties": {k: {"$ref": f"#/$defs/d{i - 1}"} for k in "abcdef"},
                        }
                        for i in range(1, 10)
                    },
                },
            }
        ),
        "references that expand to ten million schemas",
    ),
    Payload(
        "form-redos-backreference",
        "form_schema",
        _schema(note={"type": "string", "pattern": "^(a|aa)+\\1$"}),
        "a backtracking pattern only Python's re can run",
    ),
    Payload(
        "form-redos-lookahead",
        "form_schema",
        _schema(note={"type": "string", "pattern": "^(?=(a+)+$)b"}),
        "a backtracking lookahead",
    ),
    Payload(
        "form-redos-nested-quantifier",
        "form_schema",
        _schema(note={"type": "string", "pattern": "^(a+)+$"}),
        "catastrophic backtracking on a submitted value",
        submission={"note": "a" * 40 + "!"},
    ),
)

BY_ID = {payload.id: payload for payload in CORPUS}
assert len(BY_ID) == len(CORPUS), "payload ids must be unique"
