"""Data-versioning benchmark: ``syllabus data`` vs DVC on the same files, in the same run.

Workloads (issue 4, "Benchmarks"):

* add of one big random file; storage growth after overwriting 1 MiB in the middle and
  after inserting 100 bytes near the start (re-adds of the same dataset);
* add of many 1 KiB files (10 folders); re-add after changing 10 of them; status on the
  unchanged folder;
* push of that dataset to a folder remote, and pull into an empty store + checkout into an
  empty folder (what ``dvc pull`` does in a fresh clone); after it, in the same conditions,
  the floor of any checkout: a bare loop that only creates the same folders and files
  (shown against ``dvc pull``, not judged: the best ratio a pull + checkout could reach).

A Syllabus step is timed in-process from opening the client to closing it (the library
call a ``syllabus data ...`` command makes, minus interpreter start-up); ``status``, ``push``
and ``pull`` + ``checkout`` are also timed as real CLI calls, start-up included (rows marked
CLI, against the same DVC time; shown, not judged). A DVC step is one CLI call, start-up included,
as a user pays it. Before every timed step an untimed ``os.sync()``. Ratios are DVC time /
Syllabus time (higher is better for Syllabus); growth is bytes added under the store folder
(Syllabus) or ``.dvc/cache`` (DVC). The "kernel" column is the most CPU time the kernel
spent on a Syllabus step in any repetition (system time of the bench process and of the
commands it ran): a stall in file creation (see below) shows there.

Durability differs: Syllabus syncs what it stores before it records a version, DVC 3.67
copies into its cache without any fsync. So every step is also timed *until durable*: the
same step followed by ``os.sync()`` (for DVC that makes its copy durable; for Syllabus it
finds little left to write). The "+ sync" ratio compares the two tools with the same
durability; the targets use the plain ratio, as a user waits for the command.

With ``--reps N`` the whole sequence runs N times on fresh folders (the machine may be
shared: compare the paired ratios, the median of per-repetition ratios with their range).

Nothing is deleted until the last repetition is done: folders a step replaces are moved
aside (renamed, which frees no inode). At the end the run's folders are deleted and synced,
and the next run waits until a minute has passed since (what the kernel counts as
recent once the inode tables are written; six minutes while they are not).

On ext4 without a journal, as on the test machine, every file created within a minute (six
while the inode table is unwritten) of the deletion of many files in the same block group
scans past each of those freed inodes (``recently_deleted`` in ``find_inode_bit``):
creating 10,000 files after deleting 10,000 took 5-10 s of kernel time instead of 0.5 s,
whichever tool, process or thread count, and it stalled random steps of both tools. DVC
itself deletes every file it adds (``add`` relinks them from its cache), so the run's
folder is marked as a top of a directory hierarchy (``chattr +T``, where the file system
has it): ext4 then puts its subfolders, and their new files, in different block groups.

Run: ``.venv/bin/python bench/data.py`` (small) or ``--size full`` (1 GiB, 10,000 files).
DVC is provisioned by ``bench/_dvc.py`` in its own venv; ``--no-dvc`` skips it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # run as a script (bench/ on sys.path) or as `python -m bench.data`
    import _dvc
    from _common import write_random
except ImportError:  # pragma: no cover
    from bench import _dvc
    from bench._common import write_random

BENCH_DIR = Path(__file__).resolve().parent
MiB = 1 << 20


@dataclass(frozen=True)
class Size:
    big_mib: int
    nfiles: int


SIZES = {"small": Size(256, 1_000), "full": Size(1024, 10_000)}

# targets (issue 4): DVC time / Syllabus time at least this; growth at most 1 % of the file
TARGETS = {
    "add big file": 3.0,
    "add many files": 10.0,
    "status unchanged": 5.0,
    "push": 10.0,
    "pull": 10.0,
}
GROWTH_TARGET = 0.01


Timing = tuple[float, float, float]
"""Seconds of a step, seconds until its writes were durable (the step + ``os.sync()``), and
kernel CPU seconds of the step (this process and the commands it waited for)."""


def _kernel_seconds() -> float:
    t = os.times()
    return t.system + t.children_system


def timed(fn: Callable[[], Any]) -> Timing:
    os.sync()
    kernel = _kernel_seconds()
    started = time.perf_counter()
    fn()
    done = time.perf_counter()
    kernel = _kernel_seconds() - kernel
    os.sync()
    return done - started, time.perf_counter() - started, kernel


def du(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def overwrite_middle(path: Path, rng: random.Random) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek((size - MiB) // 2)
        f.write(rng.randbytes(MiB))


def insert_near_start(path: Path, rng: random.Random) -> None:
    tmp = path.with_suffix(".tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        dst.write(src.read(4096))
        dst.write(rng.randbytes(100))
        shutil.copyfileobj(src, dst, 16 * MiB)
    tmp.replace(path)


class Trash:
    """Folders set aside instead of deleted (see the module's doc), deleted at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def discard(self, path: Path) -> None:
        if not path.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.count += 1
        path.rename(self.root / f"{self.count:04d}-{path.name}")


def make_small_files(folder: Path, n: int, rng: random.Random) -> None:
    for d in range(10):
        sub = folder / f"d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(n // 10):
            (sub / f"f{i:05d}.bin").write_bytes(rng.randbytes(1024))


def change_ten(folder: Path, rng: random.Random) -> None:
    for d in range(10):
        (folder / f"d{d:02d}" / "f00000.bin").write_bytes(rng.randbytes(1024))


# --------------------------------------------------------------------------- Syllabus


class Syl:
    """A workspace in ``root``; every step opens a client, does one call and closes it."""

    def __init__(self, root: Path) -> None:
        from syllabus.client import init_workspace

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        init_workspace(root)
        self.call(lambda c: c.open())  # create the database untimed, like `dvc init`

    def call(self, fn: Callable[[Any], Any]) -> Any:
        from syllabus import Client

        with Client(cwd=self.root) as client:
            return fn(client)

    @property
    def blobs_dir(self) -> Path:
        return self.root / ".syllabus" / "blobs"


Value = Timing | float | None
Row = tuple[str, Value, Value, str]


def run(size: Size, dvc: Any, workdir: Path, seed: int, sections: set[str]) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    # Its subfolders (each tool's files, outputs, remotes) spread over the block groups, so
    # one tool's deletions (dvc add relinks every file it adds) do not stall the other's
    # file creations (see the module's doc); best effort: ext4's Orlov allocator only.
    subprocess.run(["chattr", "+T", str(workdir)], capture_output=True, check=False)
    trash = Trash(workdir / "trash")
    syl = Syl(workdir / "syl")
    repo = dvc.init_repo(workdir / "dvc") if dvc is not None else None

    if "big" in sections:
        rows.extend(_big_file(size, syl, repo, workdir, rng))
    if "small" in sections:
        rows.extend(_small_files(size, syl, repo, workdir, rng, trash))
    return rows


def _big_file(size: Size, syl: Syl, repo: Any, workdir: Path, rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    big = workdir / "big.bin"
    write_random(big, size.big_mib * MiB, rng)
    syl_big = syl.root / "big.bin"
    shutil.copyfile(big, syl_big)
    t_syl = timed(lambda: syl.call(lambda c: c.add_dataset("big", syl_big)))
    t_dvc = None
    if repo:
        shutil.copyfile(big, repo.root / "big.bin")
        t_dvc = timed(lambda: repo.add("big.bin"))
    rows.append((f"add big file ({size.big_mib} MiB)", t_syl, t_dvc, "time"))
    for label, edit in (("overwrite 1 MiB", overwrite_middle), ("insert 100 B", insert_near_start)):
        state = rng.getstate()
        edit(syl_big, rng)
        before = du(syl.blobs_dir)
        t_syl = timed(lambda: syl.call(lambda c: c.add_dataset("big", syl_big)))
        grow_syl = (du(syl.blobs_dir) - before) / (size.big_mib * MiB)
        grow_dvc = None
        if repo:
            rng.setstate(state)
            edit(repo.root / "big.bin", rng)
            before = du(repo.cache_dir)
            repo.add("big.bin")
            grow_dvc = (du(repo.cache_dir) - before) / (size.big_mib * MiB)
        rows.append((f"growth after {label}", grow_syl, grow_dvc, "growth"))
    big.unlink()
    return rows


def _small_files(
    size: Size, syl: Syl, repo: Any, workdir: Path, rng: random.Random, trash: Trash
) -> list[Row]:
    rows: list[Row] = []
    small = syl.root / "small"
    make_small_files(small, size.nfiles, rng)
    if repo:
        shutil.copytree(small, repo.root / "small")
    t_syl = timed(lambda: syl.call(lambda c: c.add_dataset("small", small)))
    t_dvc = timed(lambda: repo.add("small")) if repo else None
    rows.append((f"add many files ({size.nfiles:,} x 1 KiB)", t_syl, t_dvc, "time"))

    state = rng.getstate()
    change_ten(small, rng)
    t_syl = timed(lambda: syl.call(lambda c: c.add_dataset("small", small)))
    t_dvc = None
    if repo:
        rng.setstate(state)
        change_ten(repo.root / "small", rng)
        t_dvc = timed(lambda: repo.add("small"))
    rows.append(("re-add after changing 10", t_syl, t_dvc, "time"))

    t_syl = timed(lambda: syl.call(lambda c: c.dataset_status("small", small)))
    t_dvc = timed(lambda: repo.timed("status", "small.dvc")) if repo else None
    rows.append(("status unchanged", t_syl, t_dvc, "time"))
    _cli(syl.root, "data", "list")  # untimed: fills the bytecode cache, as an install does
    t_cli = timed(lambda: _cli(syl.root, "data", "status", "small", str(small)))
    rows.append(("status unchanged (CLI, start-up incl.)", t_cli, t_dvc, "time"))

    # -- push and pull --------------------------------------------------------------------
    syl.call(lambda c: c.add_remote("bench", str(workdir / "syl-remote")))
    t_syl = timed(lambda: syl.call(lambda c: c.push_dataset("small@2", "bench")))
    t_dvc = None
    if repo:
        repo.dvc("remote", "add", "-d", "local", str(workdir / "dvc-remote"))
        repo.git("add", "-A")
        repo.git("-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "bench")
        t_dvc = timed(lambda: repo.dvc("push", "-q", "small.dvc"))
    rows.append(("push", t_syl, t_dvc, "time"))
    syl.call(lambda c: c.add_remote("bench-cli", str(workdir / "syl-remote-cli")))
    t_cli = timed(lambda: _cli(syl.root, "data", "push", "small@2", "--remote", "bench-cli"))
    rows.append(("push (CLI, start-up incl.)", t_cli, t_dvc, "time"))

    out = workdir / "syl-out"
    for with_checkout in (False, True):
        trash.discard(syl.blobs_dir)
        syl.blobs_dir.mkdir()
        trash.discard(out)

        def pull(c: Any, checkout: bool = with_checkout) -> None:
            c.pull_dataset("small@2", "bench")
            if checkout:
                c.checkout_dataset("small@2", out)

        t_syl = timed(lambda: syl.call(pull))
        t_dvc = None
        if repo:
            trash.discard(repo.cache_dir)
            trash.discard(repo.root / "small")
            verb = "pull" if with_checkout else "fetch"
            t_dvc = timed(lambda verb=verb: repo.dvc(verb, "-q", "small.dvc"))
        name = "pull + checkout (vs dvc pull)" if with_checkout else "pull (vs dvc fetch)"
        rows.append((name, t_syl, t_dvc, "time"))
    assert sum(1 for _ in out.rglob("*.bin")) == size.nfiles
    files = _read_tree(out)
    t_floor = timed(lambda: _create_only(workdir / "floor-out", files))
    rows.append(("floor: create the files only (no tool)", t_floor, t_dvc, "time"))
    trash.discard(syl.blobs_dir)
    syl.blobs_dir.mkdir()
    out_cli = workdir / "syl-out-cli"

    def pull_cli() -> None:
        _cli(syl.root, "data", "pull", "small@2", "--remote", "bench")
        _cli(syl.root, "data", "checkout", "small@2", str(out_cli))

    rows.append(("pull + checkout (CLI, start-up incl.)", timed(pull_cli), t_dvc, "time"))
    assert sum(1 for _ in out_cli.rglob("*.bin")) == size.nfiles
    return rows


def _read_tree(root: Path) -> list[tuple[str, bytes, int]]:
    """Every file under ``root``: relative path, bytes and mode, sorted by path."""
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out.append((path.relative_to(root).as_posix(), path.read_bytes(), path.stat().st_mode))
    return out


def _create_only(root: Path, files: list[tuple[str, bytes, int]]) -> None:
    """The floor of a checkout into an empty folder: only create the folders and files, in
    one thread, each file opened once with the flags a checkout uses for a new file
    (``O_EXCL``, no follow), written whole and closed; no reading, verifying or stat cache."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    made: set[str] = set()
    for rel, data, mode in files:
        folder = os.path.join(root, os.path.dirname(rel))
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        fd = os.open(os.path.join(root, rel), flags, mode & 0o777)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _cli_env() -> dict[str, str]:
    """The environment of timed CLI calls: with bytecode caching, as an installed package
    has it (where PYTHONDONTWRITEBYTECODE forbids caches next to the sources, they go to a
    folder of the bench instead), so calls after the first do not recompile every module."""
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(BENCH_DIR / ".work" / "pycache")
    return env


def _cli(cwd: Path, *args: str) -> None:
    """One ``syllabus`` command, as a user runs it (interpreter start-up included)."""
    exe = str(Path(sys.executable).with_name("syllabus"))
    subprocess.run([exe, *args], cwd=cwd, capture_output=True, check=True, env=_cli_env())


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    text = format(_median(values), fmt)
    if len(values) > 1:
        text += f" ({format(min(values), fmt)}-{format(max(values), fmt)})"
    return text


def report(reps: list[list[Row]]) -> None:
    """Medians over the repetitions; ratios are medians of per-repetition ratios."""
    print(
        f"{'scenario':<40} {'syllabus':>8} {'kernel':>7} {'dvc':>8} {'ratio':>18}"
        f" {'ratio + sync':>18} {'target':>7}  verdict"
    )
    for i, (name, _, _, kind) in enumerate(reps[0]):
        cells = [rep[i] for rep in reps]
        if kind == "growth":
            syl = [c[1] for c in cells if isinstance(c[1], float)]
            dvc = [c[2] for c in cells if isinstance(c[2], float)]
            verdict = "PASS" if syl and max(syl) <= GROWTH_TARGET else "MISS"
            shown_syl = format(max(syl), ".3%") if syl else "-"  # the worst repetition
            shown_dvc = format(_median(dvc), ".0%") if dvc else "-"
            print(
                f"{name:<40} {shown_syl:>8} {'':>7} {shown_dvc:>8} {'':>18} {'':>18}"
                f" {'<=1%':>7}  {verdict}"
            )
            continue
        pairs = [(c[1], c[2]) for c in cells if isinstance(c[1], tuple)]
        syl_t = [p[0][0] for p in pairs]
        syl_k = max(p[0][2] for p in pairs)  # the worst repetition: a stall shows here
        dvc_t = [p[1][0] for p in pairs if isinstance(p[1], tuple)]
        ratios = [d[0] / s[0] for s, d in pairs if isinstance(d, tuple) and s[0]]
        synced = [d[1] / s[1] for s, d in pairs if isinstance(d, tuple) and s[1]]
        key = next((k for k in TARGETS if name.startswith(k)), None)
        target = TARGETS.get(key) if key and "CLI" not in name else None
        verdict = ""
        if target is not None and ratios:
            verdict = "PASS" if _median(ratios) >= target else "MISS"
        t = f">={target:g}x" if target else ""
        print(
            f"{name:<40} {_median(syl_t):>7.3f}s {syl_k:>6.2f}s "
            + (f"{_median(dvc_t):>7.3f}s" if dvc_t else f"{'-':>8}")
            + f" {_spread(ratios, '.1f') + 'x' if ratios else '-':>18}"
            + f" {_spread(synced, '.1f') + 'x' if synced else '-':>18} {t:>7}  {verdict}"
        )


DELETED_STAMP = ".deleted-at"
RECENTLY_DELETED = 65.0  # ext4 without a journal skips inodes freed in the last 60 s


def _wait_for_deletions(stamp: Path) -> None:
    """Wait until the files an earlier run deleted (and synced) are no longer "recently
    deleted" for ext4 (see the module's doc), so that they do not stall this run."""
    try:
        age = time.time() - stamp.stat().st_mtime
    except FileNotFoundError:
        return
    if 0 <= age < RECENTLY_DELETED:
        wait = RECENTLY_DELETED - age
        print(f"waiting {wait:.0f} s: an earlier run deleted its files just now", file=sys.stderr)
        time.sleep(wait)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default=os.environ.get("BENCH_SIZE", "small")
    )
    parser.add_argument("--no-dvc", action="store_true", help="skip the DVC column")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / ".work")
    parser.add_argument("--reps", type=int, default=1, help="repetitions (fresh folders each)")
    parser.add_argument(
        "--sections",
        default="big,small",
        help="comma-separated: big (the big file and its edits), small (the 1 KiB files, "
        "status, push, pull)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections or not sections <= {"big", "small"}:
        parser.error(f"--sections: big, small or both, not {args.sections!r}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    _wait_for_deletions(args.workdir / DELETED_STAMP)
    dvc = None
    if not args.no_dvc:
        dvc, status = _dvc.provision()
        print(f"DVC: {status}", file=sys.stderr)
    reps = []
    folders: list[Path] = []  # deleted after the last repetition (see the module's doc)
    try:
        for rep in range(args.reps):
            folders.append(Path(tempfile.mkdtemp(dir=args.workdir, prefix="data-")))
            reps.append(run(SIZES[args.size], dvc, folders[-1], args.seed + rep, sections))
            load = os.getloadavg()[0]
            print(f"repetition {rep + 1} of {args.reps} done (load {load:.1f})", file=sys.stderr)
    finally:
        load_text = " ".join(f"{x:.1f}" for x in os.getloadavg())
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        os.sync()  # the freed inodes' table blocks written: "recent" for 60 s, not 6 min
        (args.workdir / DELETED_STAMP).touch()
    print(f"{os.cpu_count()} CPUs, load {load_text}")
    report(reps)


if __name__ == "__main__":
    main()
