"""Grade filled-in student notebooks: ``sr-kit exercises grade SUBMISSIONS... [--csv OUT]``.

For each submitted notebook, :func:`grade_notebook`

1. finds its exercise: the solution notebook in ``src`` whose nbgrader ``grade_id`` values it
   shares (the file name is only a fallback, so a renamed file is still recognised);
2. builds the notebook that is graded, in the manner of nbgrader's ``OverwriteCells``: the
   student's cells in the student's order, but every check cell (``nbgrader.grade``) replaced by
   the instructor's version from the solution notebook, hidden tests included, and every answer
   cell (``nbgrader.solution``) keeping only the student's source. A check cell the student
   deleted is added back at the end; a missing answer cell stays missing (its check fails). The
   stored outputs are thrown away: nothing the notebook shows is trusted;
3. executes it with nbclient in a temporary folder, with one time limit for the whole
   notebook (``timeout`` seconds), errors allowed, and ``SR_KIT_GRADE_LOG`` pointing at a log
   file: every checker appends its result there (:mod:`.harness`), tagged with the check cell;
4. scores it: per check cell, the points its checker earned (0 if it never finished: an error
   before it, a timeout); ``possible`` is the sum of the check cells' ``nbgrader.points`` in the
   solution notebook (set to each checker's possible points, hidden tests included), so it does
   not depend on what the student did. An answer that delegates to the kit's reference
   implementation scores 0 for the whole exercise.

The student's code runs with the grader's rights, like any autograder's; run it where that is
acceptable (a container, a throw-away account). This module imports nbformat and nbclient, not
torch.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from .harness import _GRADE_CELL_ENV, GRADE_LOG_ENV
from .release import DEFAULT_SRC, SOLUTION_SUFFIX, student_name

__all__ = ["Grade", "grade", "grade_notebook", "print_table", "write_csv"]

DEFAULT_TIMEOUT = 300  # seconds per notebook
COLUMNS = ("student", "exercise", "points", "possible", "notes")


@dataclass
class Grade:
    """One row of the score table."""

    student: str
    exercise: str
    points: float
    possible: float
    notes: str

    def row(self) -> dict[str, str]:
        return {
            "student": self.student,
            "exercise": self.exercise,
            "points": f"{self.points:g}",
            "possible": f"{self.possible:g}",
            "notes": self.notes,
        }


def _meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _solutions(src: Path) -> dict[str, NotebookNode]:
    out = {}
    for path in sorted(src.glob(f"*{SOLUTION_SUFFIX}")):
        out[student_name(path).removesuffix(".ipynb")] = nbformat.read(path, as_version=4)
    if not out:
        raise ValueError(f"no *{SOLUTION_SUFFIX} notebooks in {src}")
    return out


def _identify(nb: NotebookNode, path: Path, solutions: dict[str, NotebookNode]) -> str | None:
    """The exercise a submission belongs to: most shared grade_ids, else its file name."""
    ids = {_meta(c).get("grade_id") for c in nb.cells} - {None}
    best, overlap = None, 0
    for stem, sol in solutions.items():
        shared = len(ids & ({_meta(c).get("grade_id") for c in sol.cells} - {None}))
        if shared > overlap:
            best, overlap = stem, shared
    if best is None and path.stem in solutions:
        best = path.stem
    return best


def _marker_cell(grade_id: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(
        f"import os as _sr_kit_os; _sr_kit_os.environ[{_GRADE_CELL_ENV!r}] = {grade_id!r}"
    )
    cell.metadata["sr_kit_grading"] = True
    return cell


def graded_version(student: NotebookNode, solution: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The notebook that is executed (see the module docstring) and notes on what was changed."""
    sol_cells = {_meta(c)["grade_id"]: c for c in solution.cells if _meta(c).get("grade_id")}
    out = copy.deepcopy(student)
    out.metadata.pop("widgets", None)
    cells, seen, notes = [], set(), []
    for cell in out.cells:
        gid = _meta(cell).get("grade_id")
        if gid and gid in sol_cells and gid not in seen:
            seen.add(gid)
            reference = copy.deepcopy(sol_cells[gid])
            if _meta(reference).get("solution"):
                reference.source = cell.source  # the student's answer
            else:
                cells.append(_marker_cell(gid))  # the instructor's check, hidden tests included
            cell = reference
        elif gid:
            continue  # a duplicated or unknown graded cell: not the student's to add
        cells.append(cell)
    for gid, reference in sol_cells.items():
        if gid in seen:
            continue
        if _meta(reference).get("grade"):
            notes.append(f"check cell {gid} was missing (added back)")
            cells += [_marker_cell(gid), copy.deepcopy(reference)]
        elif _meta(reference).get("solution"):
            notes.append(f"answer cell {gid} is missing")
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.cells = cells
    return out, notes


def _execute(nb: NotebookNode, folder: Path, log: Path, timeout: float) -> list[str]:
    """Run ``nb`` in ``folder`` with the grading log on; returns notes on errors/timeouts."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    env = dict(os.environ)
    env[GRADE_LOG_ENV] = str(log)
    env.pop(_GRADE_CELL_ENV, None)
    for key, value in (("SR_KIT_QUICK", "1"), ("SR_KIT_THREADS", "1"), ("OMP_NUM_THREADS", "1")):
        env.setdefault(key, value)
    deadline = time.monotonic() + timeout
    client = NotebookClient(
        nb,
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        allow_errors=True,
        record_timing=False,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    notes = []
    try:
        client.execute(env=env, cwd=str(folder))
    except CellTimeoutError:
        notes.append(f"timed out after {timeout:g} s")
    except DeadKernelError:
        notes.append("the kernel died")
    code = [c for c in nb.cells if c.cell_type == "code" and not c.metadata.get("sr_kit_grading")]
    for index, cell in enumerate(code):
        if _meta(cell).get("grade"):
            continue  # a check's own error is its score
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                notes.append(f"code cell {index} raised {out.get('ename')}")
    return notes


def _records(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def grade_notebook(
    path: str | os.PathLike,
    src: str | os.PathLike = DEFAULT_SRC,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    name: str | None = None,
) -> Grade:
    """Execute one filled-in student notebook and score it (see the module docstring)."""
    path = Path(path)
    label = name if name is not None else str(path)
    solutions = _solutions(Path(src))
    try:
        student = nbformat.read(path, as_version=4)
    except Exception as err:  # not a notebook at all
        return Grade(label, "?", 0, 0, f"cannot read the notebook ({type(err).__name__})")
    exercise = _identify(student, path, solutions)
    if exercise is None:
        return Grade(label, "?", 0, 0, "not one of the exercises (no matching grade_id)")
    solution = solutions[exercise]
    checks = [c for c in solution.cells if _meta(c).get("grade")]
    possible = float(sum(_meta(c).get("points", 0) for c in checks))
    graded, notes = graded_version(student, solution)
    with tempfile.TemporaryDirectory(prefix="sr_kit_grade_") as tmp:
        folder = Path(tmp)
        shutil.copy(path, folder / "submitted.ipynb")  # kept beside the graded copy
        nbformat.write(graded, folder / "graded.ipynb")
        log = folder / "grade_log.jsonl"
        notes += _execute(graded, folder, log, timeout)
        records = _records(log)
    points, delegated, failed, stubs = 0.0, [], [], []
    for cell in checks:
        gid, most = _meta(cell)["grade_id"], float(_meta(cell).get("points", 0))
        mine = [r for r in records if r.get("cell") == gid]
        if not mine:
            notes.append(f"{gid} did not finish")
            continue
        earned = sum(float(r["points"]) for r in mine)
        points += min(earned, most)
        for r in mine:
            delegated += [d for d in r["delegated"] if d not in delegated]
            stubs += [s for s in r["not_implemented"] if s not in stubs]
            failed += r["failed"] if not r["not_implemented"] else []
    if delegated:
        points = 0.0
        notes.insert(0, f"delegates to {', '.join(delegated)}: the exercise scores 0")
    else:
        if stubs:
            notes.insert(0, f"not implemented: {', '.join(stubs)}")
        if failed:
            notes.insert(0, "failed: " + "; ".join(failed))
    return Grade(label, exercise, points, possible, " | ".join(notes))


def grade(
    submissions: Iterable[str | os.PathLike],
    src: str | os.PathLike = DEFAULT_SRC,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Grade]:
    """:func:`grade_notebook` for each submission, in the given order."""
    return [grade_notebook(p, src, timeout=timeout) for p in submissions]


def print_table(grades: Sequence[Grade], file: Any = None) -> None:
    """The score table as aligned text (notes last, unpadded)."""
    file = file or sys.stdout
    rows = [dict(zip(COLUMNS, COLUMNS, strict=True)), *(g.row() for g in grades)]
    widths = {c: max(len(r[c]) for r in rows) for c in COLUMNS[:-1]}
    for r in rows:
        cells = [
            r[c].rjust(widths[c]) if c in ("points", "possible") else r[c].ljust(widths[c])
            for c in COLUMNS[:-1]
        ]
        print("  ".join([*cells, r["notes"]]).rstrip(), file=file)


def write_csv(grades: Sequence[Grade], path: str | os.PathLike) -> None:
    """The score table as CSV (columns student, exercise, points, possible, notes)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(g.row() for g in grades)
