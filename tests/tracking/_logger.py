"""A child process for the concurrency and crash tests (run with ``python -m``).

``log WORKSPACE RUN_NAME N``: start a run, log N points of ``x`` (step i, value i), end it.
``kill WORKSPACE N``: log N points into a run, flush, print the run id and ``flushed``, then
keep logging (unflushed) until killed.
"""

from __future__ import annotations

import sys
import time

from syllabus import Client


def main() -> None:
    mode, workspace, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    with Client(workspace) as client:
        if mode == "log":
            name, n = arg, int(sys.argv[4])
            run = client.create_run("concurrent", name=name)
            for i in range(n):
                client.log_metric(run.id, "x", float(i), step=i)
                if i % 5000 == 0:
                    time.sleep(0.001)  # let the other processes interleave
            client.end_run(run.id)
            return
        n = int(arg)
        run = client.create_run("crash")
        client.log_params(run.id, {"flushed": n})
        for i in range(n):
            client.log_metric(run.id, "x", float(i), step=i)
        client.flush()
        print(run.id, "flushed", flush=True)
        i = n
        while True:
            client.log_metric(run.id, "x", float(i), step=i)
            i += 1
            if i % 1000 == 0:
                time.sleep(0.001)


if __name__ == "__main__":
    main()
