"""Does a step get slower as an instance ages?

Drives the `loop` process (a sequence-flow back-edge with a user task in it)
through Procflow on SQLite and times completing one step after 10 and after
1,000 earlier iterations (the mean of a few steps each). The last line is the
ratio late/early. Target: at most 1.5.

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
            instance_id = engine.start_instance(
                s, "loop", organisation="bench", user="bencher", data={"limit": 10**9, "with_review": True}
            ).id

        def step() -> float:
            began = time.process_time()
            with factory.begin() as s:
                (task,) = engine.list_tasks(s, instance_id=instance_id)
                engine.complete_task(s, task.id, user="bencher")
            return time.process_time() - began

        done = 0
        for _ in range(10):
            step()
            done += 1
        early = sorted(step() for _ in range(SAMPLE))[SAMPLE // 2]
        done += SAMPLE
        while done < args.iterations:
            step()
            done += 1
        late = sorted(step() for _ in range(SAMPLE))[SAMPLE // 2]
        with factory() as s:
            size = len(engine.get_instance(s, instance_id).state)
        db.dispose()
    print(f"step after 10 iterations:    {early * 1000:7.2f} ms (median of {SAMPLE})")
    print(f"step after {args.iterations} iterations: {late * 1000:7.2f} ms (state {size} bytes)")
    print(f"ratio late/early: {late / early:.2f}")


if __name__ == "__main__":
    main()
