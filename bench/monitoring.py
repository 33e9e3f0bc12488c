"""Monitoring benchmark: data drift of 25 columns, Syllabus against Evidently's data drift
report, on the same data in the same run.

Reference and current sets of N rows (100,000, and 1,000,000 with ``--size full``) with
20 numeric and 5 categorical columns; the current set has 5 numeric means shifted and 2
category frequencies shifted (shared/research/anchor_monitoring.md). Every measurement runs
in its own fresh process (the peer in its own venv, ``bench/.venv-evidently``, created on
demand); the time is measured inside the process around the drift computation only, the
peak RSS of the process by the parent (``os.wait4``), and ``added`` is the peak minus the
RSS right after the data was made. Three Syllabus cases:

- ``syllabus``: profile the reference and compare the current set (both in memory);
- ``syllabus (profile stored)``: the normal monitoring case, the reference profile was
  computed earlier and stored; the process loads it and scores the current set (the
  reference data is not even loaded);
- and, reported apart, the one-off cost of profiling the reference.

Each row says which columns were flagged; the expected set is exactly the 7 shifted ones.
Ratios are Evidently over Syllabus (time and peak memory). Usage::

    .venv/bin/python bench/monitoring.py [--size small|full] [--no-evidently] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_describe, write_json
from _evidently import SHIFTED, make_data, provision, rss_mib, run_child, worker_env

SIZES = {"small": [100_000], "full": [100_000, 1_000_000]}
HERE = Path(__file__).resolve()


def _tables(rows: int, reference: bool = True) -> tuple[Any, Any]:
    import pyarrow as pa

    ref = pa.table(make_data(rows, 42, False)) if reference else None
    cur = pa.table(make_data(rows, 43, True))
    return ref, cur


def _child(mode: str, rows: int, profile_path: str | None) -> None:
    from syllabus.monitoring.profile import Profile, compare, profile_table

    if mode == "profile":
        ref, _ = _tables(rows)
        started, cpu = time.perf_counter(), time.process_time()
        profile = profile_table(ref)
        assert profile_path is not None
        Path(profile_path).write_bytes(profile.to_json())
        print(json.dumps({"seconds": time.perf_counter() - started,
                          "cpu": time.process_time() - cpu, "data_mib": rss_mib(),
                          "bytes": Path(profile_path).stat().st_size}))  # fmt: skip
        return
    ref, cur = _tables(rows, reference=mode == "full")
    data_mib = rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "full":
        profile = profile_table(ref)
    else:
        assert profile_path is not None
        profile = Profile.from_json(Path(profile_path).read_bytes())
    state = profile.state()
    for batch in cur.to_batches(max_chunksize=131_072):
        state.add(profile, batch)
    report = compare(profile, state)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "data_mib": data_mib,
                      "drifted": sorted(report.drifted)}))  # fmt: skip


def _row(name: str, rows: int, r: dict[str, Any]) -> str:
    ok = "exact" if r.get("drifted") == sorted(SHIFTED) else f"WRONG {r.get('drifted')}"
    added = r["peak_mib"] - r["data_mib"]
    return (f"{name:<28}{rows:>10,}{r['seconds']:>10.3f}{r['cpu']:>10.3f}"
            f"{r['peak_mib']:>10.0f}{added:>10.0f}  {ok}")  # fmt: skip


def _targets(e: dict[str, Any], s: dict[str, Any], p: dict[str, Any]) -> list[tuple[str, bool]]:
    """Issue 9's targets at 1,000,000 rows, on CPU seconds (as the research anchor measured
    Evidently: wall time on a shared machine is noise) and peak RSS."""
    return [
        ("at least 20x faster than Evidently", e["cpu"] / s["cpu"] >= 20),
        ("at most half Evidently's peak memory", s["peak_mib"] <= e["peak_mib"] / 2),
        ("at least 100x faster with the profile stored", e["cpu"] / p["cpu"] >= 100),
        ("exactly the shifted columns flagged",
         all(r.get("drifted") == sorted(SHIFTED) for r in (e, s, p))),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default=os.environ.get("BENCH_SIZE", "small"))
    ap.add_argument("--rows", type=int, help="override: one size of this many rows")
    ap.add_argument("--no-evidently", action="store_true", help="skip Evidently (no install)")
    ap.add_argument("--json", type=Path, help="also write every measurement as JSON")
    ap.add_argument("--child", choices=["full", "profile", "score"], help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.rows, args.profile)
        return
    sizes = [args.rows] if args.rows else SIZES[args.size]
    evidently = None
    status = "Evidently skipped (--no-evidently)"
    if not args.no_evidently:
        evidently, status = provision(log=lambda m: print(m, file=sys.stderr))
    print(f"monitoring benchmark on {git_describe()}; {status}")
    head = f"{'':<28}{'rows':>10}{'wall s':>10}{'cpu s':>10}{'peak MiB':>10}{'added':>10}  flagged"
    print(head)
    results: dict[str, Any] = {"commit": git_describe(), "peer": status, "sizes": {}}
    me = [sys.executable, str(HERE)]
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            got: dict[str, Any] = {}
            got["syllabus"] = run_child([*me, "--child", "full", "--rows", str(rows)])
            print(_row("syllabus", rows, got["syllabus"]), flush=True)
            path = str(Path(tmp) / f"profile-{rows}.json")
            got["profile"] = run_child([*me, "--child", "profile", "--rows", str(rows),
                                        "--profile", path])  # fmt: skip
            got["stored"] = run_child([*me, "--child", "score", "--rows", str(rows),
                                       "--profile", path])  # fmt: skip
            print(_row("syllabus (profile stored)", rows, got["stored"]), flush=True)
            prof = got["profile"]
            print(f"{'  (profiling the reference)':<28}{rows:>10,}{prof['seconds']:>10.3f}"
                  f"{prof['cpu']:>10.3f}  profile {prof['bytes'] / 1024:.0f} KiB")  # fmt: skip
            if evidently is not None:
                got["evidently"] = run_child(
                    [str(evidently), str(HERE.parent / "_evidently.py"), "--worker", "--rows",
                     str(rows)], env=worker_env())  # fmt: skip
                print(_row("evidently", rows, got["evidently"]), flush=True)
                e, s, p = got["evidently"], got["syllabus"], got["stored"]
                for label, mine in (("", s), ("profile stored: ", p)):
                    print(f"  {label}{rows:,} rows: {e['seconds'] / mine['seconds']:.1f}x faster "
                          f"(wall), {e['cpu'] / mine['cpu']:.1f}x less CPU, "
                          f"{mine['peak_mib'] / e['peak_mib']:.2f} of Evidently's peak memory",
                          flush=True)  # fmt: skip
                if rows >= 1_000_000:
                    for label, ok in _targets(e, s, p):
                        print(f"  {'PASS' if ok else 'MISS'} {label}", flush=True)
            results["sizes"][str(rows)] = got
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
