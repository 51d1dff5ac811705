"""Time `vee ui`'s start and stop on a fresh Airflow home: prints seconds until the login page
answers, until all components heartbeat, and for a clean stop.

    .venv/bin/python tools/bench_ui.py [--runs 2]

The first run includes creating the SQLite metadata database (`airflow db migrate` from
nothing); later runs reuse it, like a second `vee ui`.
"""

import argparse
import tempfile
import time
from pathlib import Path

from vee_tasks.airflow_runtime import free_port, start_stack
from vee_tasks.config import DAGS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vee-bench-ui-")) / "airflow"
    print("run  db       login_page_s  all_healthy_s  stop_s")
    for run in range(args.runs):
        stack = start_stack(port=free_port(), host="127.0.0.1", home=home, dags_folder=DAGS_DIR)
        try:
            login = stack.wait_for_login_page(timeout=600)
            healthy = stack.wait_healthy(timeout=600)
        finally:
            t0 = time.monotonic()
            stack.stop()
            stop = time.monotonic() - t0
        print(f"{run + 1:<4} {'new' if run == 0 else 'reused':<8} {login:>12.1f}  {healthy:>13.1f}  {stop:>6.1f}")


if __name__ == "__main__":
    main()
