"""The second wall around scripts: evaluator processes with operating-system limits.

RestrictedPython (``engine._sandbox``) decides what a script may do; it cannot
stop one C call that runs for a minute (``pow(3, 2**99999, 2**99999 + 1)``, a
``set`` of hash-colliding integers, a regular expression with quadratic
backtracking in SpiffWorkflow's DMN code) or a single allocation of gigabytes.
So every script, expression and decision table is evaluated in a separate,
pre-started Python process:

- its address space is limited (``RLIMIT_AS``, ``PROCFLOW_EVALUATOR_MEMORY_MB``,
  default 512), so a memory bomb fails there with ``MemoryError``;
- its CPU time per request is limited (``RLIMIT_CPU`` raised to what it has
  used plus the request's time limit, plus one second), and the caller waits
  at most the time limit plus :data:`GRACE_SECONDS` before it kills the process;
- a process that hit a limit, died, or answered garbage is killed and replaced,
  so the next request gets a clean one.

The caller's thread waits on a pipe, which releases the GIL: while one
organisation's script burns its CPU second in its own process, the web server
and the worker go on serving everyone else. A pool per Python process (so per
gunicorn worker, per ``procflow worker``) hands out idle evaluators and starts
more on demand, up to :data:`MAX_EVALUATORS`; after a fork, the child process
starts a pool of its own.

Requests and answers are pickles over the pipes. The caller trusts what it
sends; what comes back is read with an unpickler that only accepts plain data
(numbers, text, containers, ``Decimal``, dates and times), because a script
that found its way out of the first wall must not gain the server by what it
answers.
"""

from __future__ import annotations

import atexit
import contextlib
import decimal
import io
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import SandboxViolation, ScriptError, ScriptTimeout

MEMORY_VARIABLE = "PROCFLOW_EVALUATOR_MEMORY_MB"
DEFAULT_MEMORY_MB = 512
GRACE_SECONDS = 0.5
# Starting an evaluator imports the sandbox; a busy machine may need a few seconds.
START_TIMEOUT_SECONDS = 20.0
MAX_EVALUATORS = 8
_HEADER = struct.Struct("!I")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_ERRORS: dict[str, type[ScriptError]] = {
    "ScriptError": ScriptError,
    "SandboxViolation": SandboxViolation,
    "ScriptTimeout": ScriptTimeout,
}


@dataclass(frozen=True)
class Request:
    """One evaluation: ``kind`` is ``eval``, ``exec`` or ``decide`` (a whole decision table)."""

    kind: str
    time_limit: float
    source: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    external: dict[str, Any] | None = None
    extra_globals: dict[str, Any] = field(default_factory=dict)
    table: Any = None
    element: str | None = None
    # The caller's clock: scripts asking for today's date get the caller's, not the evaluator's.
    now: float = field(default_factory=time.time)


class EvaluatorCrashed(ScriptError):
    """The evaluator process died or was killed: a CPU, memory or time limit was hit."""


# -- the wire ----------------------------------------------------------------------


class _PlainDataUnpickler(pickle.Unpickler):
    """Accepts plain data only: what a script can legitimately hand back."""

    _ALLOWED = {
        ("decimal", "Decimal"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("zoneinfo", "ZoneInfo"),
        ("uuid", "UUID"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "range"),
        ("builtins", "slice"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"an evaluator may not answer with {module}.{name}")


def _send(stream: Any, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    chunks, missing = [], size
    while missing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _plain(value: Any) -> Any:
    """What the evaluator answers: its values as the standard types (the sandbox's ``Decimal`` is one)."""
    if isinstance(value, decimal.Decimal) and type(value) is not decimal.Decimal:
        return decimal.Decimal(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(_plain(v) for v in value)
    return value


# -- the caller's side -------------------------------------------------------------


def _memory_bytes() -> int:
    raw = os.environ.get(MEMORY_VARIABLE, "")
    try:
        megabytes = int(raw) if raw else DEFAULT_MEMORY_MB
    except ValueError:
        megabytes = DEFAULT_MEMORY_MB
    return max(megabytes, 128) * 1024 * 1024


class Evaluator:
    """One evaluator process and the pipes to it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _ENGINE_DIR, str(_memory_bytes())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C goes to the server, which ends it.
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env=_child_environment(),
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin
        self._out = self.process.stdout.fileno()
        self._ready = False

    def _wait_until_ready(self) -> None:
        if self._ready:
            return
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        (size,) = _HEADER.unpack(_read_exactly(self._out, _HEADER.size, deadline))
        if _read_exactly(self._out, size, deadline) != b"ready":
            raise EOFError
        self._ready = True

    def run(self, request: Request) -> Any:
        """Send *request*, wait for the answer; raise the script's error as the sandbox would."""
        try:
            message = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ScriptError(f"the data cannot be sent to the script's evaluator ({exc})") from None
        try:
            self._wait_until_ready()
            _send(self._in, message)
            deadline = time.monotonic() + request.time_limit + GRACE_SECONDS
            (size,) = _HEADER.unpack(_read_exactly(self._out, _HEADER.size, deadline))
            if size > MAX_MESSAGE_BYTES:
                raise EOFError
            answer = _PlainDataUnpickler(io.BytesIO(_read_exactly(self._out, size, deadline))).load()
        except TimeoutError:
            self.kill()
            raise ScriptTimeout(
                f"script exceeded the time limit of {request.time_limit:g}s (its evaluator was stopped)"
            ) from None
        except (EOFError, OSError, pickle.UnpicklingError, struct.error, ValueError) as exc:
            code = self.kill()
            raise EvaluatorCrashed(_crash_message(code, exc)) from None
        status, value = answer
        if status == "ok":
            return value
        kind, message, line, cause, cause_text = value
        error = _ERRORS.get(kind, ScriptError)(message, line=line)
        if cause == "NameError":
            error.__cause__ = NameError(cause_text)  # SpiffWorkflow's "did you mean" reads it
        if status == "fatal":
            self.kill()  # answered, but it must not serve anyone after a MemoryError
        raise error

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int | None:
        """Stop the process at once; return how it ended."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(Exception):
            self._in.close()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        with contextlib.suppress(Exception):
            self.process.stdout.close()  # type: ignore[union-attr]
        return self.process.returncode


def _crash_message(code: int | None, exc: BaseException) -> str:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return "script exceeded its CPU time limit (its evaluator was stopped)"
    if isinstance(exc, pickle.UnpicklingError):
        return f"script returned something that is not data ({exc})"
    return "script exceeded the evaluator's limits (its process ended); it may use too much memory"


_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
# The evaluator imports the sandbox and what it needs, not the engine package (SQLAlchemy,
# models, connectors): a stand-in package keeps engine/__init__.py from running there.
_BOOT = (
    "import sys, types; package = types.ModuleType('engine'); package.__path__ = [sys.argv[1]]; "
    "sys.modules['engine'] = package; from engine._evaluator import serve; serve(int(sys.argv[2]))"
)


def _child_environment() -> dict[str, str]:
    # Only what Python needs: no database URL, secret key or credentials reach the evaluator.
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")
    return {key: os.environ[key] for key in keep if key in os.environ}


class EvaluatorPool:
    """Idle evaluators of this process, started on demand up to ``max_size`` busy at once."""

    def __init__(self, *, max_size: int = MAX_EVALUATORS, keep_idle: int = 2) -> None:
        self._max_size = max_size
        self._keep_idle = keep_idle
        self._idle: list[Evaluator] = []
        self._busy = 0
        self._lock = threading.Condition()
        self._pid = os.getpid()

    @contextlib.contextmanager
    def evaluator(self) -> Iterator[Evaluator]:
        """Lend an evaluator; a dead one is replaced, an extra one beyond ``keep_idle`` is ended."""
        with self._lock:
            while not self._idle and self._busy >= self._max_size:
                self._lock.wait()
            lent = self._idle.pop() if self._idle else None
            self._busy += 1
        try:
            if lent is not None and not lent.alive:
                lent.kill()  # reaps it and closes its pipes
                lent = None
            if lent is None:
                lent = Evaluator()
            yield lent
        finally:
            with self._lock:
                self._busy -= 1
                if lent is not None and lent.alive and len(self._idle) < self._keep_idle:
                    self._idle.append(lent)
                    lent = None
                self._lock.notify()
            if lent is not None:
                lent.kill()

    def run(self, request: Request) -> Any:
        """Evaluate *request* in one of the pool's processes."""
        with self.evaluator() as evaluator:
            return evaluator.run(request)

    def warm_up(self) -> None:
        """Start the idle evaluators now, so the first scripts do not wait for them."""
        with self._lock:
            missing = self._keep_idle - len(self._idle)
            self._idle.extend(Evaluator() for _ in range(max(missing, 0)))

    def cpu_seconds(self) -> float:
        """Return the CPU time the idle evaluators have used (Linux; for benchmarks)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        with self._lock:
            pids = [e.process.pid for e in self._idle if e.alive]
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total

    def close(self) -> None:
        """End every idle evaluator (busy ones end when they are returned)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for evaluator in idle:
            evaluator.kill()


_pool: EvaluatorPool | None = None
_pool_lock = threading.Lock()


def pool() -> EvaluatorPool:
    """Return this process's evaluator pool (a forked child gets its own)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._pid != os.getpid():
            _pool = EvaluatorPool()
        return _pool


@atexit.register
def _close_pool() -> None:
    if _pool is not None and _pool._pid == os.getpid():
        _pool.close()


def _forget_inherited_pool() -> None:
    # A forked child (a gunicorn worker) must not hold the pipes of its parent's evaluators:
    # they would never see their end of input when the parent goes. Close, do not kill.
    if _pool is None:
        return
    for evaluator in _pool._idle:
        with contextlib.suppress(Exception):
            evaluator._in.close()
        with contextlib.suppress(Exception):
            os.close(evaluator._out)


os.register_at_fork(after_in_child=_forget_inherited_pool)


def evaluate(request: Request) -> Any:
    """Run *request* in an evaluator process of this process's pool."""
    return pool().run(request)


# -- the evaluator's side ----------------------------------------------------------


def _set_cpu_limit(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft = int(used + seconds) + 2
    _hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    limit = soft if _hard == resource.RLIM_INFINITY else min(soft, _hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, _hard))


def _failure(message: str) -> tuple[str, str, None, None, None]:
    return ("ScriptError", message, None, None, None)


def serve(memory_bytes: int) -> None:
    """Answer requests on standard input until it closes: the evaluator process's main loop."""
    from . import _sandbox

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing a script or library prints can corrupt the protocol
    requests = sys.stdin.buffer
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _send(answers, b"ready")
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        request: Request = pickle.loads(requests.read(size))  # from the server that started us
        _set_cpu_limit(request.time_limit)
        fatal = False
        try:
            answer: tuple[str, Any] = ("ok", _plain(_sandbox.evaluate_here(request)))
        except ScriptError as err:
            cause = err.__cause__
            if isinstance(cause, MemoryError):
                # Caught by the sandbox as any other failure; this process is not to be trusted after it.
                fatal = True
                err = ScriptError(
                    f"MemoryError: the script needs more than the {memory_bytes >> 20} MB it may use",
                    line=err.line,
                )
            answer = (
                "fatal" if fatal else "error",
                (
                    type(err).__name__,
                    err.message,
                    err.line,
                    type(cause).__name__ if cause else None,
                    str(cause) if isinstance(cause, NameError) else None,
                ),
            )
        except MemoryError:
            fatal = True
            answer = ("fatal", _failure("MemoryError: the script used too much memory"))
        except Exception as exc:  # SpiffWorkflow's own code on the script's data (a DMN table)
            answer = ("error", _failure(f"{type(exc).__name__}: {exc}"))
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            fatal = True
            payload = pickle.dumps(("fatal", _failure("MemoryError: the result is too large")))
        except Exception as exc:
            message = f"the script's result cannot be used as data ({type(exc).__name__}: {exc})"
            payload = pickle.dumps(("error", _failure(message)))
        _send(answers, payload)
        if fatal:
            return
