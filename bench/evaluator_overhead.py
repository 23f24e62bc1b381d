"""What do evaluator processes cost?

Scripts and expressions run in separate evaluator processes with CPU and
memory limits (engine/_evaluator.py). This measures, in one run:

1. one expression evaluated in the calling process (the first wall only) and
   in an evaluator (both walls), CPU seconds of both processes; and a plain
   one (engine/_plain_expressions.py), which the engine evaluates itself;
2. the engine-overhead workload (bench/engine_overhead.py: start, two user
   tasks, a script, a gateway, on SQLite) with evaluation in this process and
   in evaluators, alternating rounds and keeping the best of each.

The last line is the ratio of the workload's rate with evaluators to its rate
without them. Target: at least 0.9 (the engine-overhead ratio may not fall by
more than 10%).

    python bench/evaluator_overhead.py [N] [--rounds R]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from engine_overhead import procflow  # type: ignore[import-not-found]

from engine import _sandbox
from engine._evaluator import pool

EXPRESSION = "sum(row['price'] for row in rows) > 100 and kind == 'goods'"
PLAIN = "amount > 1000 and kind == 'goods'"
DATA = {"amount": 1500, "kind": "goods", "rows": [{"price": i} for i in range(20)]}


def _cpu() -> float:
    return time.process_time() + pool().cpu_seconds()


@contextlib.contextmanager
def in_this_process() -> Iterator[None]:
    """Evaluate behind the first wall only, as before evaluator processes existed."""
    isolated = _sandbox.SandboxedEnvironment
    saved = isolated.evaluate, isolated.execute, isolated.decide
    inline = _sandbox.InlineEnvironment

    def decide(self: Any, table: Any, context: dict[str, Any], *, element: str | None) -> Any:
        request = _sandbox._evaluator.Request(
            kind="decide", time_limit=self.time_limit, context=dict(context), table=table, element=element
        )
        return _sandbox.evaluate_here(request)

    isolated.evaluate, isolated.execute, isolated.decide = inline.evaluate, inline.execute, decide  # type: ignore[method-assign]
    try:
        yield
    finally:
        isolated.evaluate, isolated.execute, isolated.decide = saved  # type: ignore[method-assign]


def per_evaluation(n: int, expression: str = EXPRESSION) -> float:
    environment = _sandbox.SandboxedEnvironment(time_limit=2.0)
    environment.evaluate(expression, DATA)
    began = _cpu()
    for _ in range(n):
        environment.evaluate(expression, DATA)
    return (_cpu() - began) / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", type=int, nargs="?", default=200, help="instances per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with in_this_process():
        inline_eval = per_evaluation(5000)
    isolated_eval = per_evaluation(5000)
    print(f"one expression in this process:  {inline_eval * 1e6:8.1f} µs CPU")
    print(f"one expression in an evaluator:  {isolated_eval * 1e6:8.1f} µs CPU (both processes)")
    print(f"one plain expression:            {per_evaluation(5000, PLAIN) * 1e6:8.1f} µs CPU")
    inline_rates, isolated_rates = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder, in_this_process():
            inline_rates.append(procflow(args.n, f"sqlite:///{folder}/inline.sqlite3").cpu)
        with tempfile.TemporaryDirectory() as folder:
            isolated_rates.append(procflow(args.n, f"sqlite:///{folder}/isolated.sqlite3").cpu)
    inline, isolated = max(inline_rates), max(isolated_rates)
    print(f"workload, evaluated in this process: {inline:8.1f} instances/s")
    print(f"workload, evaluated in evaluators:   {isolated:8.1f} instances/s")
    print(f"ratio evaluators/in-process: {isolated / inline:.3f}")


if __name__ == "__main__":
    main()
