"""Student versions of the exercise notebooks: nbgrader's markers and metadata, without nbgrader.

An exercise is written once, as a *solution* notebook ``NN_topic_solution.ipynb``. Its answer
cells carry ``{"nbgrader": {"solution": true, ...}}`` metadata and mark the answer with::

    def channel_shift(x, ratio=1 / 3, px=1):
        ### BEGIN SOLUTION
        ...the reference answer...
        ### END SOLUTION

:func:`make_student` does what nbgrader's ``ClearSolutions``, ``ClearHiddenTests`` and
``ClearOutput`` preprocessors do: each solution region becomes, at the marker's indentation::

        # YOUR CODE HERE
        raise NotImplementedError()

(``YOUR ANSWER HERE`` in Markdown cells); a solution cell without a region is replaced as a
whole; ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions are removed; outputs and
execution counts are cleared. Cell tags and nbgrader metadata are kept, so the student notebook
still works with nbgrader's autograder. :func:`release` writes the student notebooks of a whole
folder; the CLI's ``sr-kit exercises release --out DIR [--src notebooks/exercises]`` calls it
(``python -m sr_kit.exercises.release --out DIR`` does the same).

This module imports nbformat, but not torch.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..fileio import atomic_path

__all__ = ["DEFAULT_SRC", "make_student", "release", "student_name"]

#: The solution notebooks of this repository (an editable install's checkout).
DEFAULT_SRC = Path(__file__).resolve().parents[2] / "notebooks" / "exercises"

SOLUTION_SUFFIX = "_solution.ipynb"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)

# A marker is a line of its own: any indentation, one or more '#', the words, nothing after.
_MARKER = r"^(?P<indent>[ \t]*)#+[ \t]*{}[ \t\r]*$"
_SOLUTION = (
    re.compile(_MARKER.format("BEGIN SOLUTION")),
    re.compile(_MARKER.format("END SOLUTION")),
)
_HIDDEN = (
    re.compile(_MARKER.format("BEGIN HIDDEN TESTS")),
    re.compile(_MARKER.format("END HIDDEN TESTS")),
)
# nbgrader finds its delimiters anywhere in a line: none of these words may survive a release.
_LEFTOVERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _clear_regions(
    lines: list[str],
    markers: tuple[re.Pattern[str], re.Pattern[str]],
    stub: Sequence[str],
    where: str,
    what: str,
) -> tuple[list[str], int]:
    """Replace every ``BEGIN``...``END`` region of ``lines`` by ``stub`` (indented like the
    BEGIN marker); returns the new lines and the number of regions."""
    begin, end = markers
    out: list[str] = []
    inside_since: int | None = None
    regions = 0
    for number, line in enumerate(lines, start=1):
        if m := begin.match(line):
            if inside_since is not None:
                raise ValueError(
                    f"{where}: line {number} opens a {what} region inside the one opened on "
                    f"line {inside_since} (nested or missing END {what})"
                )
            inside_since, regions = number, regions + 1
            out.extend(m["indent"] + s for s in stub)
        elif end.match(line):
            if inside_since is None:
                raise ValueError(f"{where}: line {number} has END {what} without BEGIN {what}")
            inside_since = None
        elif inside_since is None:
            out.append(line)
    if inside_since is not None:
        raise ValueError(f"{where}: BEGIN {what} on line {inside_since} is never closed")
    return out, regions


def make_student(nb: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The student version of a solution notebook (a new notebook; ``nb`` is not changed).

    Args:
        nb: The solution notebook (nbformat v4).
        name: How to name the notebook in error messages, e.g. its file name.

    Raises:
        ValueError: naming the notebook and the cell, for unbalanced or nested markers, a
            solution region in a cell without ``nbgrader.solution`` metadata (nbgrader refuses
            those too), or marker text left over after clearing (e.g. a marker that is not on a
            line of its own).
    """
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        meta = cell.get("metadata", {})
        grader = meta.get("nbgrader", {})
        label = f" ({grader['grade_id']})" if grader.get("grade_id") else ""
        where = f"{name}: cell {index}{label}"
        lines = cell.source.split("\n")
        regions = 0
        if cell.cell_type in ("code", "markdown"):
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            lines, regions = _clear_regions(lines, _SOLUTION, stub, where, "SOLUTION")
            lines, _ = _clear_regions(lines, _HIDDEN, (), where, "HIDDEN TESTS")
            is_solution = bool(grader.get("solution"))
            if regions and not is_solution:
                raise ValueError(
                    f"{where}: has a solution region but no nbgrader.solution metadata "
                    '(add {"nbgrader": {"solution": true, ...}} to the cell)'
                )
            if is_solution and not regions:  # nbgrader: a solution cell without a region
                lines = list(stub)
        cell.source = "\n".join(lines)
        for leftover in _LEFTOVERS:
            if leftover in cell.source:
                raise ValueError(
                    f"{where}: '{leftover}' is still in the student version; write each marker "
                    "on a line of its own ('### BEGIN SOLUTION')"
                )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("collapsed", "scrolled", "execution"):
            meta.pop(key, None)
    student.metadata.pop("widgets", None)
    return student


def student_name(solution: str | os.PathLike) -> str:
    """``01_channel_shift_solution.ipynb`` -> ``01_channel_shift.ipynb``."""
    name = Path(solution).name
    if not name.endswith(SOLUTION_SUFFIX):
        raise ValueError(f"{name} is not a solution notebook (*{SOLUTION_SUFFIX})")
    return name[: -len(SOLUTION_SUFFIX)] + ".ipynb"


def _write_atomic(path: Path, nb: NotebookNode) -> None:
    text = nbformat.writes(nb)
    if not text.endswith("\n"):
        text += "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def release(src_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write the student version of every ``*_solution.ipynb`` in ``src_dir`` into ``out_dir``.

    ``NN_topic_solution.ipynb`` becomes ``out_dir/NN_topic.ipynb``; nothing else is copied.
    Every notebook is converted before the first one is written, so a broken one leaves
    ``out_dir`` as it was; each file is written atomically (a temporary file, then a rename).
    ``out_dir`` is created if needed.

    Args:
        src_dir: The folder of solution notebooks (``DEFAULT_SRC`` in this repository).
        out_dir: Where the student notebooks go. Must not be ``src_dir`` or inside it, so a
            release can never overwrite or sit among the solutions. Keep it outside
            ``notebooks/`` too: nbval collects every notebook there, and a student notebook
            fails at each check cell by design.

    Returns:
        The paths written, in the order of the solution notebooks' names.

    Raises:
        ValueError: ``out_dir`` is ``src_dir`` or inside it; ``src_dir`` holds no solution
            notebook; or a notebook has broken markers (see :func:`make_student`).
    """
    src, out = Path(src_dir).resolve(), Path(out_dir).resolve()
    if out == src or src in out.parents:
        raise ValueError(
            f"refusing to release into {out}: it is (inside) the solution folder {src}; "
            "choose an output folder outside it"
        )
    if not src.is_dir():
        raise ValueError(f"{src} is not a folder of solution notebooks")
    sources = sorted(src.glob(f"*{SOLUTION_SUFFIX}"))
    if not sources:
        raise ValueError(f"no *{SOLUTION_SUFFIX} notebooks in {src}")
    converted = []
    for path in sources:
        student = make_student(nbformat.read(path, as_version=4), path.name)
        nbformat.validate(student)
        converted.append((out / student_name(path), student))
    out.mkdir(parents=True, exist_ok=True)
    for target, student in converted:
        _write_atomic(target, student)
    return [target for target, _ in converted]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sr_kit.exercises.release --out DIR [--src DIR]``."""
    parser = argparse.ArgumentParser(
        prog="sr-kit exercises release",
        description="Write the student versions of the exercise notebooks.",
    )
    parser.add_argument("--out", required=True, help="output folder (not inside --src)")
    parser.add_argument("--src", default=str(DEFAULT_SRC), help="folder of *_solution.ipynb")
    args = parser.parse_args(argv)
    try:
        written = release(args.src, args.out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
