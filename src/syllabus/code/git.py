"""Reading a working tree through the real ``git`` executable, and the no-git fallback.

A capture runs a handful of git commands and nothing else:

* ``git rev-parse --show-toplevel`` (is this a repository, and where is its root),
* ``git status --porcelain=v2 --branch -z --untracked-files=all`` (commit, branch,
  changed tracked files and untracked files, in one call),
* ``git config --get-regexp remote\\..*\\.url`` (remote URLs; credentials are stripped),
* ``git diff --binary HEAD`` only when tracked files changed.

Every command runs with ``GIT_OPTIONAL_LOCKS=0`` so capturing never takes the index lock
a user's own git command may need. Outside git (or when git is not installed) the
project's source files are listed by glob instead (:func:`scan_sources`).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from syllabus.errors import InvalidArgumentError, NotFoundError, StorageError

__all__ = [
    "SourceFile",
    "WorkingTree",
    "apply_patch",
    "archive_commit",
    "clone_commit",
    "git_executable",
    "read_working_tree",
    "scan_sources",
    "strip_credentials",
]

log = logging.getLogger(__name__)

_TIMEOUT = 60.0
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>.*)$")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to keep: its root-relative POSIX path, absolute path and size."""

    rel: str
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class WorkingTree:
    """What git says about a working tree (see :func:`read_working_tree`)."""

    root: Path
    commit: str | None  # None: no commits yet
    branch: str | None  # None: detached HEAD
    remote: str | None
    changed: tuple[str, ...]  # tracked paths that differ from HEAD
    untracked: tuple[str, ...]  # untracked, not ignored, root-relative


@cache
def git_executable() -> str | None:
    """The path of ``git``, or None when it is not installed."""
    return shutil.which("git")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    return env


def _git(
    args: Sequence[str], cwd: Path, *, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    exe = git_executable()
    if exe is None:
        raise NotFoundError("git is not installed; install git or capture without it")
    try:
        proc = subprocess.run(  # noqa: S603 - fixed executable, arguments built here
            [exe, *args],
            cwd=cwd,
            env=env or _env(),
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StorageError(f"git {args[0]} failed in {cwd}: {exc}") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise StorageError(
            f"git {args[0]} failed in {cwd}: {message[-1] if message else proc.returncode}"
        )
    return proc


def strip_credentials(url: str) -> str:
    """``url`` without user names' passwords, tokens, query strings or fragments.

    ``https://user:token@host/x.git`` becomes ``https://host/x.git``; for ``ssh://`` the
    user name is kept (``git@``) but never a password; scp-like ``git@host:org/x.git`` is
    returned unchanged (it holds no secret).
    """
    url = url.strip()
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        if match and ":" not in (match.group("user") or ""):
            return url
        return url.rpartition("@")[2] if "@" in url else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable remote URL>"
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    if parts.scheme in ("ssh", "git+ssh") and parts.username and parts.password is None:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _parse_status(out: bytes) -> tuple[str | None, str | None, list[str], list[str]]:
    commit: str | None = None
    branch: str | None = None
    changed: list[str] = []
    untracked: list[str] = []
    tokens = out.split(b"\x00")
    i = 0
    while i < len(tokens):
        token = tokens[i].decode("utf-8", "surrogateescape")
        i += 1
        if not token:
            continue
        if token.startswith("# branch.oid "):
            oid = token[len("# branch.oid ") :]
            commit = None if oid == "(initial)" else oid
        elif token.startswith("# branch.head "):
            head = token[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif token.startswith("1 "):
            changed.append(token.split(" ", 8)[8])
        elif token.startswith("2 "):
            changed.append(token.split(" ", 9)[9])
            i += 1  # the original path of a rename or copy follows
        elif token.startswith("u "):
            changed.append(token.split(" ", 10)[10])
        elif token.startswith("? "):
            untracked.append(token[2:])
    return commit, branch, changed, untracked


def _remote(root: Path) -> str | None:
    proc = _git(["config", "--get-regexp", r"^remote\..*\.url$"], root, check=False)
    urls: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        urls[key[len("remote.") : -len(".url")]] = value
    if not urls:
        return None
    name = "origin" if "origin" in urls else sorted(urls)[0]
    return strip_credentials(urls[name])


def read_working_tree(folder: Path) -> WorkingTree | None:
    """What git says about the repository containing ``folder``, or None when ``folder``
    is not in a git working tree or git is not installed."""
    if git_executable() is None:
        return None
    top = _git(["rev-parse", "--show-toplevel"], folder, check=False)
    if top.returncode != 0 or not top.stdout.strip():
        return None  # not a repository (or a bare one)
    root = Path(top.stdout.decode("utf-8", "surrogateescape").strip())
    status = _git(
        [
            "-c",
            "status.relativePaths=false",
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=dirty",
        ],
        root,
    )
    commit, branch, changed, untracked = _parse_status(status.stdout)
    return WorkingTree(
        root=root,
        commit=commit,
        branch=branch,
        remote=_remote(root),
        changed=tuple(changed),
        untracked=tuple(untracked),
    )


def diff_head(root: Path) -> bytes:
    """``git diff --binary HEAD``: staged and unstaged changes of tracked files."""
    return _git(
        ["diff", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "HEAD", "--"], root
    ).stdout


def tracked_files(root: Path) -> list[str]:
    """Paths in the index (used in a repository without commits)."""
    out = _git(["ls-files", "-z", "--cached"], root).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\x00") if p]


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    base = rel.rpartition("/")[2]
    return any(fnmatch.fnmatchcase(base, p) or fnmatch.fnmatchcase(rel, p) for p in patterns)


def select_files(
    root: Path,
    paths: Sequence[str],
    *,
    include: Sequence[str] | None,
    exclude: Sequence[str],
    max_file_size: int,
    max_total_size: int,
) -> tuple[list[SourceFile], list[str]]:
    """The files of ``paths`` (root-relative) to keep, and the ones left out by size.

    ``include`` None keeps every file; otherwise a file's name or path must match a glob.
    Files under an excluded folder name are ignored silently.
    """
    kept: list[SourceFile] = []
    skipped: list[str] = []
    total = 0
    for rel in sorted(paths):
        parts = rel.split("/")
        if any(_matches(part, exclude) for part in parts[:-1]) or _matches(rel, exclude):
            continue
        if include is not None and not _matches(rel, include):
            continue
        full = str(root / rel)
        try:
            st = os.lstat(full)
        except OSError:
            continue  # deleted since git listed it
        if not stat.S_ISREG(st.st_mode):
            continue  # links, folders (submodules), sockets
        if st.st_size > max_file_size or total + st.st_size > max_total_size:
            skipped.append(rel)
            continue
        total += st.st_size
        kept.append(SourceFile(rel, full, st.st_size))
    return kept, skipped


def scan_sources(
    root: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    max_file_size: int,
    max_total_size: int,
) -> tuple[list[SourceFile], list[str]]:
    """Source files under ``root`` by glob (the snapshot outside git), and those skipped
    for size. Excluded folders are not entered."""
    rels: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _matches(d, exclude))
        prefix = os.path.relpath(folder, root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        rels.extend(prefix + name for name in files if _matches(name, include))
    return select_files(
        root,
        rels,
        include=None,
        exclude=exclude,
        max_file_size=max_file_size,
        max_total_size=max_total_size,
    )


def has_commit(repo: Path, commit: str) -> bool:
    """True when ``repo`` is a git repository holding ``commit``."""
    if git_executable() is None or not repo.is_dir():
        return False
    proc = _git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False)
    return proc.returncode == 0


def archive_commit(repo: Path, commit: str, dest: Path) -> None:
    """Write the files of ``commit`` from ``repo`` into ``dest`` (``git archive``)."""
    import io
    import tarfile

    out = _git(["archive", "--format=tar", commit], repo).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        tar.extractall(dest, filter="data")


def apply_patch(patch: bytes, dest: Path) -> None:
    """Apply a ``git diff --binary`` patch to the plain folder ``dest``.

    ``GIT_CEILING_DIRECTORIES`` keeps git from finding a repository above ``dest``, so the
    patch applies to ``dest`` itself.
    """
    if not patch:
        return
    exe = git_executable()
    if exe is None:
        raise NotFoundError("git is not installed; it is needed to apply the recorded patch")
    env = _env()
    env["GIT_CEILING_DIRECTORIES"] = str(dest.resolve().parent)
    proc = subprocess.run(  # noqa: S603 - fixed executable
        [exe, "apply", "--binary", "--whitespace=nowarn", "-"],
        cwd=dest,
        env=env,
        input=patch,
        capture_output=True,
        timeout=_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidArgumentError(
            f"the recorded patch does not apply in {dest}: "
            f"{message[0] if message else proc.returncode}"
        )


def clone_commit(remote: str, commit: str, dest: Path) -> None:
    """Clone ``remote`` into the empty folder ``dest`` and check out ``commit`` (detached)."""
    _git(["clone", "--quiet", "--no-checkout", remote, str(dest)], dest.parent)
    proc = _git(["checkout", "--quiet", "--detach", commit], dest, check=False)
    if proc.returncode != 0:
        raise NotFoundError(
            f"commit {commit[:12]} is not in {remote}; pass a repository that has it"
        )
