"""Every committed result from one command: the manifest of results/ and checkpoints/.

``results/manifest.toml`` lists each committed artifact with the command that made it, its device
class, its expected run time and a ``dry_run`` command with tiny settings. ``sr-kit reproduce``
lists the entries, re-makes one (``--only``) or every entry of a device class in place, or runs
every dry run into a temporary folder and checks that each writes the files it declares (CI runs
the dry run, so an entry whose command stops working fails CI). Not covered by a notebook
(results/README.md describes each artifact).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MANIFEST", "Entry", "ReproduceError", "load_manifest", "run_entry", "select"]

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "results" / "manifest.toml"
SHARED = REPO.parent / "shared"
DEVICES = ("cpu", "cuda", "none")
_KEYS = {"name", "files", "device", "needs", "expected_s", "measured_on", "command", "dry_run",
         "note"}  # fmt: skip


class ReproduceError(RuntimeError):
    """A manifest that cannot be read, or an entry whose command failed or wrote too little."""


@dataclass(frozen=True)
class Entry:
    """One committed artifact (or group of files made by one command)."""

    name: str
    files: tuple[str, ...]
    device: str
    command: str | None = None
    dry_run: str | None = None
    needs: tuple[str, ...] = ()
    expected_s: float | None = None
    measured_on: str = ""
    note: str = ""

    @property
    def runnable(self) -> bool:
        return self.command is not None


@dataclass
class Outcome:
    """What running an entry did."""

    entry: Entry
    status: str  # done | skipped | failed
    wall_s: float = 0.0
    written: list[Path] = field(default_factory=list)
    reason: str = ""


def load_manifest(path: str | os.PathLike = MANIFEST) -> list[Entry]:
    """The manifest's entries; errors name the file, the entry and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ReproduceError(f"{path}: cannot read the manifest ({err})") from None
    entries, names = [], set()
    for i, raw in enumerate(data.get("artifact", [])):
        where = f"{path}: artifact {i + 1} ({raw.get('name', '?')})"
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise ReproduceError(f"{where}: unknown key(s) {', '.join(unknown)}")
        for key in ("name", "files", "device"):
            if key not in raw:
                raise ReproduceError(f"{where}: missing key {key!r}")
        if raw["device"] not in DEVICES:
            raise ReproduceError(f"{where}: device must be one of {DEVICES}, got {raw['device']!r}")
        if raw["name"] in names:
            raise ReproduceError(f"{where}: the name {raw['name']!r} is used twice")
        if ("command" in raw) != ("dry_run" in raw):
            raise ReproduceError(f"{where}: give both `command` and `dry_run`, or neither")
        names.add(raw["name"])
        entries.append(Entry(
            name=raw["name"], files=tuple(raw["files"]), device=raw["device"],
            command=raw.get("command"), dry_run=raw.get("dry_run"),
            needs=tuple(raw.get("needs", ())), expected_s=raw.get("expected_s"),
            measured_on=raw.get("measured_on", ""), note=raw.get("note", ""),
        ))  # fmt: skip
    return entries


def select(entries: Iterable[Entry], *, only: str | None = None,
           device: str | None = None) -> list[Entry]:  # fmt: skip
    """Entries by name (``only``) or by device class; an unknown name lists the known ones."""
    entries = list(entries)
    if only is not None:
        hit = [e for e in entries if e.name == only]
        if not hit:
            raise ReproduceError(
                f"no manifest entry {only!r}; known: {', '.join(e.name for e in entries)}"
            )
        return hit
    if device is not None:
        return [e for e in entries if e.device == device]
    return entries


def _argv(command: str, places: dict[str, str]) -> list[str]:
    """The command as argv: ``sr-kit`` and ``python`` run with this interpreter."""
    try:
        text = command.format(**places)
    except KeyError as err:
        raise ReproduceError(f"unknown placeholder {err} in {command!r}") from None
    argv = shlex.split(text)
    if argv[0] == "sr-kit":
        return [sys.executable, "-m", "sr_kit", *argv[1:]]
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


def _relative(path: Path) -> str:
    """``path`` relative to the checkout if it lies in it or beside it (../shared), else as is."""
    path = path.resolve()
    if path.is_relative_to(REPO.parent):
        return os.path.relpath(path, REPO)
    return str(path)


def run_entry(entry: Entry, *, dry: bool, root: str | os.PathLike | None = None,
              shared: str | os.PathLike = SHARED, timeout_s: float = 1800) -> Outcome:  # fmt: skip
    """Run ``entry``'s command (or its dry run) and check that it wrote its files.

    In place (``dry=False``) the files land in this checkout; a dry run writes under ``root``
    (``results/``, ``checkpoints/`` and ``tmp/`` there).
    """
    if not entry.runnable:
        return Outcome(entry, "skipped", reason=entry.note or "no command (kept by hand)")
    shared = Path(shared)
    if "shared" in entry.needs and not shared.is_dir():
        return Outcome(entry, "skipped", reason=f"needs {shared} (benchmarks and weights)")
    base = Path(root) if (dry and root is not None) else REPO
    if dry and root is None:
        raise ValueError("a dry run needs a root folder")
    tmp = base / "tmp" / entry.name
    for sub in ("results", "checkpoints"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    places = {"results": base / "results", "checkpoints": base / "checkpoints", "tmp": tmp,
              "shared": shared}  # fmt: skip
    # Relative to the checkout (the command's working folder) where possible: artifacts record
    # their command, and a committed command must not name this machine's folders.
    places = {k: _relative(v) for k, v in places.items()}
    argv = _argv(entry.dry_run if dry else entry.command, places)
    targets = [base / f for f in entry.files]
    before = {t: t.stat().st_mtime_ns if t.exists() else None for t in targets}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
           os.environ.get("PYTHONPATH")]))}  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout_s)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return Outcome(entry, "failed", wall, reason=f"exit {proc.returncode}: {tail}")
    stale = [t for t in targets if not t.exists() or t.stat().st_mtime_ns == before[t]]
    if stale:
        return Outcome(entry, "failed", wall,
                       reason="did not write " + ", ".join(str(t) for t in stale))  # fmt: skip
    return Outcome(entry, "done", wall, written=targets)
