"""Run registry: one SQLite row per training run, the provenance of every number the kit shows.

A run is started before training (status ``"running"``) and finished afterwards with its step
count, wall time and per-dataset metrics. Each row stores the run config whole (``run_json``),
the evaluation protocol, and ``run_hash`` (:meth:`sr_kit.runconfig.RunConfig.hash`: model,
training settings, training data, seed), by which the ablation grid finds finished runs to reuse
instead of training again. Registries of schema 1 (before run configs) are upgraded in place
when opened: their rows get the same run hash an equal run gets today.

The file lives in the user's data directory (see :func:`default_registry_path`), so runs from
every notebook and CLI call land in one place. Several processes may write at once: the database
uses WAL journalling, every write is one ``BEGIN IMMEDIATE`` transaction, and a busy timeout
makes a writer wait for the lock instead of failing. Only the standard library and the kit's
torch-free config modules are imported here; pandas is imported inside :meth:`Registry.frame`.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import PROTOCOL, canonical_json, stable_hash
from .runconfig import RunConfig, run_key_hash

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METRICS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Registry",
    "RegistryError",
    "default_registry_path",
]

SCHEMA_VERSION = 2
STATUSES = ("running", "done", "failed", "interrupted")
METRICS = ("psnr_y", "ssim_y", "lpips")
BUSY_TIMEOUT_S = 30.0

# Benchmark order of the published tables; other datasets follow alphabetically in frame().
_DATASET_ORDER = ("Set5", "Set14", "B100", "Urban100", "Manga109")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    finished TEXT,
    model TEXT NOT NULL,
    scale INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    steps INTEGER,
    wall_s REAL,
    device TEXT NOT NULL DEFAULT '',
    torch TEXT NOT NULL DEFAULT '',
    git_commit TEXT NOT NULL DEFAULT '',
    command TEXT NOT NULL DEFAULT '',
    params INTEGER,
    params_deploy INTEGER,
    macs INTEGER,
    run_dir TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    train_json TEXT NOT NULL,
    train_hash TEXT NOT NULL,
    run_json TEXT NOT NULL DEFAULT '',
    run_hash TEXT NOT NULL DEFAULT '',
    protocol TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (run_hash, status);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    psnr_y REAL,
    ssim_y REAL,
    lpips REAL,
    PRIMARY KEY (run_id, dataset)
);
"""

# Columns of runs as returned by get()/frame(); "commit" is an SQL keyword, hence git_commit.
_RUN_FIELDS = (
    "id",
    "created",
    "model",
    "scale",
    "seed",
    "data",
    "status",
    "steps",
    "wall_s",
    "device",
    "torch",
    "commit",
    "command",
    "params",
    "params_deploy",
    "macs",
    "config_hash",
    "train_hash",
    "finished",
    "run_dir",
    "run_hash",
    "protocol",
)
_SELECT_RUN = (
    "SELECT id, created, model, scale, seed, data, status, steps, wall_s, device, torch, "
    "git_commit, command, params, params_deploy, macs, config_hash, train_hash, finished, "
    "run_dir, run_hash, protocol, run_json, config_json, train_json FROM runs"
)


class RegistryError(RuntimeError):
    """The registry file cannot be used (a directory, not SQLite, or from a newer sr-kit)."""


def default_registry_path() -> Path:
    """Where runs are recorded unless a path is given.

    ``$SR_KIT_REGISTRY`` if set; otherwise ``sr-kit/runs.sqlite`` in the user's data directory:
    ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application Support`` on macOS,
    ``%LOCALAPPDATA%`` on Windows.
    """
    env = os.environ.get("SR_KIT_REGISTRY")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        # The XDG spec says a relative value is invalid and must be ignored.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "sr-kit" / "runs.sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _opt_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # numpy/torch integers cannot be bound by sqlite3 directly
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or None, got {value!r}") from None


def _opt_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or None, got {value!r}") from None
    return None if math.isnan(out) else out


def _metric_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple]:
    out = []
    for row in rows:
        if "dataset" not in row or not str(row["dataset"]):
            raise ValueError(f"a metrics row needs a 'dataset', got {dict(row)!r}")
        # Extra keys (scale, images, ...) are allowed, but a row with no known metric is a typo.
        if not any(k in row for k in METRICS):
            raise ValueError(
                f"metrics row for {row['dataset']!r} has none of {list(METRICS)}: {dict(row)!r}"
            )
        values = [_opt_float(row.get(k), f"{row['dataset']}: {k}") for k in METRICS]
        out.append((str(row["dataset"]), *values))
    return out


class Registry:
    """The run registry: an SQLite file with tables ``runs`` and ``metrics``.

    Use as a context manager or call :meth:`close`. ``path=":memory:"`` gives a throwaway one.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        """Open (creating if needed) the registry at ``path`` or :func:`default_registry_path`."""
        if path is None:
            path = default_registry_path()
        self.path = path if path == ":memory:" else Path(path).expanduser()
        if isinstance(self.path, Path):
            if self.path.is_dir():
                raise RegistryError(f"run registry {self.path} is a directory, not a SQLite file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
            self._con = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as e:
            raise RegistryError(f"cannot open run registry {self.path}: {e}") from e
        try:
            self._setup()
        except sqlite3.DatabaseError as e:
            self._con.close()
            raise RegistryError(
                f"{self.path} is not a usable sr-kit run registry (SQLite file): {e}"
            ) from e
        except BaseException:
            self._con.close()
            raise

    def _setup(self) -> None:
        con = self._con
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute("PRAGMA foreign_keys = ON")
        # Switching to WAL needs a brief exclusive lock; skip it when another process already did.
        # SQLite does not apply the busy timeout to this switch, so a process that opens the
        # file while another creates the schema retries here instead of failing.
        # (An in-memory database stays in "memory" mode: one attempt, whatever it answers.)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                con.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        with self._write():
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RegistryError(
                    f"run registry {self.path} has schema version {version}; this sr-kit "
                    f"reads up to {SCHEMA_VERSION} (upgrade sr-kit)"
                )
            if version == 0:
                tables = {
                    r[0]
                    for r in con.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'"
                    )
                }
                if tables - {"runs", "metrics"}:
                    raise RegistryError(
                        f"{self.path} is an SQLite file of something else "
                        f"(tables {sorted(tables)}), not an sr-kit run registry"
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version == 1:
                self._upgrade_from_1(con)

    @staticmethod
    def _upgrade_from_1(con: sqlite3.Connection) -> None:
        """Schema 1 -> 2: add the run config, run hash and protocol columns.

        A schema-1 row keeps ``run_json`` empty (it was never stored), gets the run hash computed
        from its own columns (config, training key, data, seed: exactly what the hash covers) and
        the protocol of ``sr_kit.evaluate``, the only code that wrote metrics in schema 1.
        """
        for column in ("run_json", "run_hash", "protocol"):
            con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
        rows = con.execute("SELECT id, config_json, train_json, data, seed FROM runs").fetchall()
        con.executemany(
            "UPDATE runs SET run_hash = ?, protocol = ? WHERE id = ?",
            [(run_key_hash(json.loads(c), json.loads(t), d, s), PROTOCOL, i)
             for i, c, t, d, s in rows],
        )  # fmt: skip
        con.execute("DROP INDEX IF EXISTS runs_lookup")
        con.execute("CREATE INDEX IF NOT EXISTS runs_by_hash ON runs (run_hash, status)")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so two
        # processes never both read-then-write and lose an update.
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    # -- writing -------------------------------------------------------------------------------

    def start_run(
        self,
        run: RunConfig,
        *,
        command: str = "",
        device: str = "",
        torch_version: str = "",
        commit: str = "",
        params: int | None = None,
        params_deploy: int | None = None,
        macs: int | None = None,
        run_dir: str = "",
        protocol: str = PROTOCOL,
    ) -> int:
        """Record a new run with status ``"running"`` and return its id.

        The run config is stored whole (``run_json``) with its hash; the model config and the
        training key are also stored on their own (``config_json``/``train_json`` and hashes),
        so tables can group runs by network or by training settings.
        """
        if not isinstance(run, RunConfig):
            raise TypeError(f"start_run needs a RunConfig, got {type(run).__name__}")
        d = run.to_dict()
        config_json = canonical_json(d["model"], "config")
        train_json = canonical_json(run.train_key(), "train")
        values = (
            _now(),
            run.model.name,
            int(run.model.scale),
            int(run.seed),
            run.data.train,
            "running",
            str(device),
            str(torch_version),
            str(commit),
            str(command),
            _opt_int(params, "params"),
            _opt_int(params_deploy, "params_deploy"),
            _opt_int(macs, "macs"),
            str(run_dir),
            config_json,
            stable_hash(d["model"]),
            train_json,
            stable_hash(run.train_key()),
            run.to_json(),
            run.hash(),
            str(protocol),
        )
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO runs (created, model, scale, seed, data, status, device, torch, "
                "git_commit, command, params, params_deploy, macs, run_dir, config_json, "
                "config_hash, train_json, train_hash, run_json, run_hash, protocol) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return int(cur.lastrowid)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str = "done",
        steps: int,
        wall_s: float,
        metrics: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Set a run's final status, steps, wall time and metrics, all in one transaction.

        ``status`` is one of ``"done"``, ``"failed"``, ``"interrupted"`` or ``"running"`` (a
        progress update). Metrics rows are ``{"dataset", "psnr_y", "ssim_y", "lpips"}``.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; choose one of {list(STATUSES)}")
        rows = _metric_rows(metrics)
        finished = None if status == "running" else _now()
        with self._write() as con:
            cur = con.execute(
                "UPDATE runs SET status = ?, steps = ?, wall_s = ?, finished = ? WHERE id = ?",
                (status, int(steps), float(wall_s), finished, int(run_id)),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no run with id {run_id} in {self.path}")
            self._upsert_metrics(con, int(run_id), rows)

    def add_metrics(self, run_id: int, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add or update metrics of an existing run, one row per dataset.

        A value left out (or None) keeps what is stored, so an LPIPS-only row adds LPIPS to
        earlier PSNR/SSIM without wiping them.
        """
        rows = _metric_rows(rows)
        with self._write() as con:
            if con.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
                raise KeyError(f"no run with id {run_id} in {self.path}")
            self._upsert_metrics(con, int(run_id), rows)

    @staticmethod
    def _upsert_metrics(con: sqlite3.Connection, run_id: int, rows: list[tuple]) -> None:
        con.executemany(
            "INSERT INTO metrics (run_id, dataset, psnr_y, ssim_y, lpips) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, dataset) DO UPDATE SET "
            "psnr_y = COALESCE(excluded.psnr_y, psnr_y), "
            "ssim_y = COALESCE(excluded.ssim_y, ssim_y), "
            "lpips = COALESCE(excluded.lpips, lpips)",
            [(run_id, *row) for row in rows],
        )

    # -- reading -------------------------------------------------------------------------------

    def _metrics_of(self, run_ids: list[int]) -> dict[int, dict[str, dict[str, float | None]]]:
        out: dict[int, dict[str, dict[str, float | None]]] = {i: {} for i in run_ids}
        if not run_ids:
            return out
        marks = ",".join("?" * len(run_ids))
        for run_id, dataset, *values in self._con.execute(
            f"SELECT run_id, dataset, psnr_y, ssim_y, lpips FROM metrics "
            f"WHERE run_id IN ({marks}) ORDER BY run_id, dataset",
            run_ids,
        ):
            out[run_id][dataset] = dict(zip(METRICS, values, strict=True))
        return out

    @staticmethod
    def _row_dict(row: tuple) -> dict[str, Any]:
        out = dict(zip(_RUN_FIELDS, row[: len(_RUN_FIELDS)], strict=True))
        out["run"] = json.loads(row[-3]) if row[-3] else None  # None: a schema-1 row
        out["config"] = json.loads(row[-2])
        out["train"] = json.loads(row[-1])
        return out

    def get(self, run_id: int) -> dict[str, Any]:
        """One run as a dict: every column, ``run``/``config``/``train`` dicts and ``metrics``.

        ``run`` is the stored run config (``RunConfig.from_dict`` rebuilds it), None for rows
        written before run configs were stored.
        ``metrics`` maps dataset -> ``{"psnr_y", "ssim_y", "lpips"}``. KeyError if missing.
        """
        row = self._con.execute(_SELECT_RUN + " WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id} in {self.path}")
        out = self._row_dict(row)
        out["metrics"] = self._metrics_of([out["id"]])[out["id"]]
        return out

    def find_done(self, run_hash: str) -> dict[str, Any] | None:
        """The newest run with status ``"done"`` and this run hash (as :meth:`get`), or None."""
        row = self._con.execute(
            "SELECT id FROM runs WHERE run_hash = ? AND status = 'done' "
            "ORDER BY created DESC, id DESC LIMIT 1",
            (str(run_hash),),
        ).fetchone()
        return None if row is None else self.get(row[0])

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def frame(self) -> pd.DataFrame:
        """All runs as a DataFrame, one row per run (ordered by id).

        Columns: the run fields, the config flattened as ``cfg.<key>`` (nested dicts as
        ``cfg.<key>.<sub>``, lists as tuples so they can be grouped on), and the metrics pivoted
        as ``psnr_y/<dataset>``, ``ssim_y/<dataset>``, ``lpips/<dataset>``.
        """
        import pandas as pd

        rows = self._con.execute(_SELECT_RUN + " ORDER BY id").fetchall()
        runs = [self._row_dict(r) for r in rows]
        metrics = self._metrics_of([r["id"] for r in runs])
        datasets = sorted(
            {d for per_run in metrics.values() for d in per_run},
            key=lambda d: (
                (_DATASET_ORDER.index(d), "") if d in _DATASET_ORDER else (len(_DATASET_ORDER), d)
            ),
        )
        records = []
        cfg_keys: dict[str, None] = {}  # insertion-ordered set
        for run in runs:
            record = {k: run[k] for k in _RUN_FIELDS}
            flat = _flatten(run["config"], "cfg.")
            cfg_keys.update(dict.fromkeys(flat))
            record.update(flat)
            for metric in METRICS:
                for d in datasets:
                    record[f"{metric}/{d}"] = metrics[run["id"]].get(d, {}).get(metric)
            records.append(record)
        columns = [
            *_RUN_FIELDS,
            *sorted(cfg_keys),
            *(f"{m}/{d}" for m in METRICS for d in datasets),
        ]
        df = pd.DataFrame.from_records(records, columns=columns)
        for m in METRICS:
            for d in datasets:
                df[f"{m}/{d}"] = df[f"{m}/{d}"].astype(float)  # None -> NaN, never object dtype
        return df

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        self._con.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"


def _flatten(obj: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out
