"""Does a step get slower as an instance ages?

Drives the `loop` process (a sequence-flow back-edge with a user task in it)
through Procflow on SQLite and times completing one step of an instance after
10 and of one after 1,000 earlier iterations (CPU-time medians of 20 steps each).
The two instances' steps alternate, so a slower minute of the machine slows
both sides alike. The last line is the ratio late/early. Target: at most 1.5.

    python bench/long_running.py [ITERATIONS]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import engine

BUNDLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "loop"
SAMPLE = 20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("iterations", type=int, nargs="?", default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = engine.create_db_engine(f"sqlite:///{folder}/bench.sqlite3")
        engine.upgrade_database(db)
        factory = engine.create_session_factory(db)
        with factory.begin() as s:
            engine.add_organisation(s, "bench", name="Bench")
            engine.add_user(s, "bencher", organisation="bench", roles=["requester"])
            engine.deploy_path(s, BUNDLE)
            data = {"limit": 10**9, "with_review": True}
            young, old = (
                engine.start_instance(s, "loop", organisation="bench", user="bencher", data=data).id
                for _ in range(2)
            )

        def step(instance_id: int) -> float:
            began = time.process_time()
            with factory.begin() as s:
                (task,) = engine.list_tasks(s, instance_id=instance_id)
                engine.complete_task(s, task.id, user="bencher")
            return time.process_time() - began

        for _ in range(args.iterations):
            step(old)
        for _ in range(10):
            step(young)
        early_steps, late_steps = [], []
        for _ in range(SAMPLE):
            early_steps.append(step(young))
            late_steps.append(step(old))
        early = sorted(early_steps)[SAMPLE // 2]
        late = sorted(late_steps)[SAMPLE // 2]
        with factory() as s:
            size = len(engine.get_instance(s, old).state)
        db.dispose()
    print(f"step after 10 iterations:    {early * 1000:7.2f} ms (median of {SAMPLE})")
    print(f"step after {args.iterations} iterations: {late * 1000:7.2f} ms (state {size} bytes)")
    print(f"ratio late/early: {late / early:.2f}")


if __name__ == "__main__":
    main()
