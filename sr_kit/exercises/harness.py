"""The machinery shared by the checkers of ``notebooks/exercises`` (one module per exercise).

A checker opens a :class:`Session`, runs its sub-checks through :meth:`Session.check` and ends
with :meth:`Session.finish`. Each sub-check prints one line::

    PASS: zero fill at the borders, no wrap-around
    FAIL: zero fill at the borders, no wrap-around: 24 border values are not 0. Hint: ...

A sub-check is a function that returns ``None`` (or a short note for the PASS line) or calls
:func:`fail` with what was wrong and a hint. It runs isolated (:func:`isolated`): no warnings, and
the notebook's random state is given back afterwards. :meth:`Session.finish` returns a
:class:`CheckResult` when everything passed, and otherwise raises

* ``NotImplementedError`` when every failure came from a function that still raises
  ``NotImplementedError`` (the stub of the student version), so the check cell of an untouched
  exercise fails with exactly that error;
* ``AssertionError("N of M checks failed")`` in every other case.

Either exception carries the result as ``err.result``. A student function that raises, or returns
something of the wrong type or shape, is reported as a FAIL line (:func:`call` and the
``expect_*`` validators); the checker itself never crashes on it. PASS lines contain no measured
numbers, so the printed text is identical on every machine (nbval compares it in the solution
notebooks).

**Points.** Every sub-check carries points (``Session.check(..., points=2)``; 1 by default). A
passed sub-check earns them, a failed one earns 0, and :meth:`Session.finish` prints the score
as the last line, ``Score: 7 / 9 points``; the result carries ``points`` and ``possible``.

**Hidden tests.** A sub-check with ``hidden=True`` runs only when hidden tests are on: in the
solution notebooks and in grading, where the check cell holds a ``### BEGIN HIDDEN TESTS``
region that calls :func:`hidden_tests` (the released student notebook has neither the region
nor its output), or when a checker is called with ``hidden=True``. Its line starts with
``[hidden]``.

**Delegation.** :meth:`Session.own_work` runs the student's function once while the kit's
reference implementations (and the checker's own) are wired to trip (:func:`tripwire`, through
:func:`sys.settrace`: every path to them is seen, whatever name they were imported under). An
answer that calls one of them scores 0 on the whole checker, with a FAIL line that names the
function; the remaining sub-checks are not run.

**Grading log.** When the environment variable ``SR_KIT_GRADE_LOG`` names a file, every
:meth:`Session.finish` appends its result there as one JSON line (``sr-kit exercises grade``
reads it, never the notebook's printed output).
"""

from __future__ import annotations

import inspect
import json
import numbers
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "GRADE_LOG_ENV",
    "NOT_IMPLEMENTED",
    "CheckResult",
    "Fail",
    "Session",
    "call",
    "close",
    "expect_array",
    "expect_integer",
    "expect_number",
    "expect_tensor",
    "fail",
    "hidden_tests",
    "hidden_tests_enabled",
    "isolated",
    "need_any",
    "same_db",
    "seeded",
    "tripwire",
]

NOT_IMPLEMENTED = "not implemented yet: write the function body"
GRADE_LOG_ENV = "SR_KIT_GRADE_LOG"  # a file: every finished check appends one JSON line
_GRADE_CELL_ENV = "SR_KIT_GRADE_CELL"  # set by the grader before each check cell
_HIDDEN = {"on": False}


def hidden_tests(on: bool = True) -> None:
    """Switch the hidden sub-checks on (or off) for every later checker call in this process.

    The check cells of the solution notebooks call it inside a ``### BEGIN HIDDEN TESTS`` region,
    which the release removes: students run the visible sub-checks only, the instructor's
    notebook and ``sr-kit exercises grade`` run all of them."""
    _HIDDEN["on"] = bool(on)


def hidden_tests_enabled() -> bool:
    """Whether :func:`hidden_tests` has switched the hidden sub-checks on."""
    return _HIDDEN["on"]


def _fmt(points: float) -> str:
    return f"{points:g}"


@dataclass
class CheckResult:
    """What a checker found: ``passed``, the printed ``lines`` (one per sub-check, then the score
    line), and the score: ``points`` earned of ``possible``. ``delegated`` names the kit
    functions the answer called instead of doing the work (then ``points`` is 0); ``failed``
    holds the labels of the failed sub-checks."""

    name: str
    passed: bool
    lines: list[str]
    n_checks: int
    n_failed: int
    not_implemented: list[str] = field(default_factory=list)
    points: float = 0.0
    possible: float = 0.0
    n_hidden: int = 0
    delegated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        score = f"{_fmt(self.points)} / {_fmt(self.possible)} points"
        if self.passed:
            return f"{self.name}: all {self.n_checks} checks passed, {score}"
        return f"{self.name}: {self.n_failed} of {self.n_checks} checks failed, {score}"

    def as_record(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (what the grading log stores)."""
        return {
            "checker": self.name,
            "points": self.points,
            "possible": self.possible,
            "n_checks": self.n_checks,
            "n_failed": self.n_failed,
            "n_hidden": self.n_hidden,
            "not_implemented": list(self.not_implemented),
            "delegated": list(self.delegated),
            "failed": list(self.failed),
        }


class Fail(Exception):
    """A sub-check failed: ``detail`` says what was wrong, ``hint`` how to fix it."""

    def __init__(self, detail: str, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


class Delegated(Fail):
    """The answer called the kit's reference implementation (see :meth:`Session.own_work`)."""

    def __init__(self, detail: str, hint: str | None, names: Sequence[str]) -> None:
        super().__init__(detail, hint)
        self.names = list(names)


def fail(detail: str, hint: str | None = None) -> NoReturn:
    """End the current sub-check with a FAIL line: ``detail``, then ``Hint: hint``."""
    raise Fail(detail, hint)


class _Tripped(BaseException):
    """Raised into a call of a forbidden function (a BaseException, so that an ``except
    Exception`` in the student's code does not hide it; the hit is recorded anyway)."""


def _code_of(fn: Any) -> Any:
    fn = getattr(fn, "__func__", fn)  # a bound or class method
    fn = inspect.unwrap(fn)  # decorators such as torch.no_grad() keep the original in __wrapped__
    if isinstance(fn, type):  # a module class: its forward
        fn = inspect.unwrap(fn.forward)
    return getattr(fn, "__code__", None)


@contextmanager
def tripwire(forbidden: Mapping[str, Any]) -> Iterator[list[str]]:
    """Inside, any call of a function in ``forbidden`` (display name -> function, method or
    ``nn.Module`` class, whose ``forward`` is watched) is recorded in the yielded list and
    interrupted. It watches code objects through :func:`sys.settrace`, so it sees the function
    under any name or import path (``sr_kit.ops.channel_shift``, ``from sr_kit.ops import
    channel_shift as cs``, the ``ChannelShift`` module that calls it), and it changes nothing in
    the kit. The previous trace function (a debugger, coverage) is restored afterwards."""
    codes = {}
    for name, fn in forbidden.items():
        code = _code_of(fn)
        if code is not None:
            codes[code] = name
    hits: list[str] = []

    def tracer(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            hits.append(codes[frame.f_code])
            raise _Tripped(codes[frame.f_code])
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield hits
    except _Tripped:
        pass
    finally:
        sys.settrace(previous)


def _short(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception_hint(err: BaseException) -> str | None:
    """A hint for the exceptions students run into most (autograd in-place writes, 0 MSE)."""
    text = str(err)
    if "leaf Variable" in text or ("requires grad" in text and "in-place" in text):
        return (
            "you are writing into a tensor that requires grad: wrap the body in "
            "`with torch.no_grad():`"
        )
    if "ZeroDivisionError" in type(err).__name__ or "division by zero" in text:
        return "when the MSE is 0 (identical images) return float('inf')"
    return None


def _stub_name(err: BaseException, default: str) -> str:
    """The function that raised ``err``: the innermost frame of its traceback (so a written
    function that calls a stub names the stub, not itself)."""
    tb, frame = err.__traceback__, None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    if frame is None or frame.f_code.co_name.startswith("<"):
        return default
    name = frame.f_code.co_name
    owner = frame.f_locals.get("self")
    if owner is not None and isinstance(owner, nn.Module):
        return f"{type(owner).__name__}.{name}"
    return name


def call(fn: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the student's ``fn``; any exception but NotImplementedError becomes a FAIL."""
    if not callable(fn):
        fail(f"{name} is not callable (got {type(fn).__name__})", f"pass the function {name}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise  # a stub: the session counts it separately (see Session.check)
    except Exception as err:
        fail(f"{name} raised {type(err).__name__}: {_short(err)}", _exception_hint(err))


@contextmanager
def isolated() -> Iterator[None]:
    """Run a sub-check without warnings or numpy floating-point messages, and give the notebook
    its random state back afterwards (the student's code may draw random numbers, e.g. when it
    creates an ``nn.Conv2d``, and so does the kit when a checker builds a block)."""
    np_state = np.random.get_state()
    with (
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
        torch.random.fork_rng(devices=[]),
    ):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator inside, and give the notebook its own state back after
    (``nn.Conv2d`` and the kit's blocks draw their initial weights from the global generator)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Session:
    """Runs the sub-checks of one checker, prints their lines, keeps the score, and decides what
    to raise. ``hidden``: run the hidden sub-checks (default: :func:`hidden_tests_enabled`)."""

    def __init__(self, name: str, hidden: bool | None = None) -> None:
        self.name = name
        self.hidden = hidden_tests_enabled() if hidden is None else bool(hidden)
        self.lines: list[str] = []
        self.n_checks = self.n_failed = self.n_hidden = 0
        self.points = self.possible = 0.0
        self.missing: dict[str, int] = {}  # stub name -> further failed checks that needed it
        self.delegated: list[str] = []
        self.failed: list[str] = []
        self.skipped = 0  # sub-checks not run because the answer delegates

    def _emit(self, line: str) -> None:
        print(line)
        self.lines.append(line)

    def check(
        self,
        label: str,
        fn: Callable[[], str | None],
        who: str | None = None,
        *,
        points: float = 1,
        hidden: bool = False,
    ) -> None:
        """Run one sub-check worth ``points``; ``fn`` returns None (or a short note) or raises
        :class:`Fail`. ``who`` names the student function a NotImplementedError most likely
        came from. A ``hidden`` sub-check runs only when the session's hidden tests are on."""
        if hidden and not self.hidden:
            return
        if hidden:
            self.n_hidden += 1
            label = f"[hidden] {label}"
        self.n_checks += 1
        self.possible += points
        if self.delegated:  # scored 0 anyway: do not run it
            self.n_failed += 1
            self.skipped += 1
            self.failed.append(label)
            return
        try:
            with isolated():
                note = fn()
        except Delegated as d:
            self.n_failed += 1
            self.failed.append(label)
            self.delegated.extend(n for n in d.names if n not in self.delegated)
            self._emit(f"FAIL: {label}: {d.detail.rstrip('.')}. Hint: {d.hint}")
        except Fail as f:
            self.n_failed += 1
            self.failed.append(label)
            hint = f" Hint: {f.hint}" if f.hint else ""
            self._emit(f"FAIL: {label}: {f.detail.rstrip('.')}.{hint}")
        except NotImplementedError as err:
            self.n_failed += 1
            self.failed.append(label)
            stub = _stub_name(err, who or self.name)
            # one line per stub, not one per sub-check: an untouched exercise stays readable
            if stub in self.missing:
                self.missing[stub] += 1
            else:
                self.missing[stub] = 0
                self._emit(f"FAIL: {label}: {stub} is {NOT_IMPLEMENTED}.")
        except Exception as err:  # the checker met something it did not expect: still a FAIL
            self.n_failed += 1
            self.failed.append(label)
            self._emit(
                f"FAIL: {label}: could not check the result ({type(err).__name__}: {_short(err)})."
            )
        else:
            self.points += points
            self._emit(f"PASS: {label}" + (f" ({note})" if note else ""))

    def own_work(
        self, name: str, probe: Callable[[], Any], forbidden: Mapping[str, Any], who: str
    ) -> None:
        """A sub-check worth 0 points that runs ``probe()`` (a call of the student's function
        ``who``) with the functions in ``forbidden`` tripwired (:func:`tripwire`). If the
        answer calls one, the checker scores 0 and its later sub-checks are not run. A stub
        (NotImplementedError) counts as usual; any other error is left to the other checks."""
        names = ", ".join(forbidden)

        def run() -> None:
            with tripwire(forbidden) as hits:
                try:
                    probe()
                except NotImplementedError:
                    if not hits:
                        raise
                except Exception:
                    pass  # a crash or a wrong result is reported by the sub-checks that follow
            if hits:
                used = list(dict.fromkeys(hits))
                raise Delegated(
                    f"{who} calls {', '.join(used)}, the kit's own implementation that this "
                    "check compares with, so this exercise scores 0",
                    "write the computation yourself (the kit's function is the answer key, not "
                    "a building block here)",
                    used,
                )

        self.check(f"{name} does its own work (does not call {names})", run, who, points=0)

    def finish(self) -> CheckResult:
        """Print the score line; return the result if every sub-check passed, else raise (see
        the module docstring)."""
        for who, extra in self.missing.items():
            if extra:
                self._emit(f"      ({extra} more check{'s' * (extra > 1)} also need {who})")
        if self.delegated:
            self.points = 0.0
            if self.skipped:
                self._emit(
                    f"      ({self.skipped} more check{'s' * (self.skipped > 1)} not run: "
                    "the answer delegates to the kit)"
                )
        self._emit(f"Score: {_fmt(self.points)} / {_fmt(self.possible)} points")
        result = CheckResult(
            self.name,
            self.n_failed == 0,
            list(self.lines),
            self.n_checks,
            self.n_failed,
            list(self.missing),
            points=self.points,
            possible=self.possible,
            n_hidden=self.n_hidden,
            delegated=list(self.delegated),
            failed=list(self.failed),
        )
        _log(result)
        if result.passed:
            return result
        summary = f"{self.n_failed} of {self.n_checks} checks failed"
        err: Exception
        if self.n_failed == sum(1 + extra for extra in self.missing.values()):
            err = NotImplementedError(f"{', '.join(self.missing)}: {NOT_IMPLEMENTED} ({summary})")
        else:
            err = AssertionError(summary)
        err.result = result  # type: ignore[attr-defined]
        raise err


def _log(result: CheckResult) -> None:
    """Append ``result`` to the grading log named by ``SR_KIT_GRADE_LOG`` (if set)."""
    path = os.environ.get(GRADE_LOG_ENV)
    if not path:
        return
    record = {"cell": os.environ.get(_GRADE_CELL_ENV), **result.as_record()}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def need_any(name: str, **functions: Any) -> None:
    """A checker that accepts the functions of an exercise one at a time needs at least one."""
    if all(f is None for f in functions.values()):
        raise TypeError(f"{name}() needs at least one of: {', '.join(functions)}")


# ---- validating what the student's function returned ------------------------------------------


def expect_tensor(out: Any, shape: Sequence[int] | None, what: str) -> Tensor:
    """``out`` as a detached tensor of ``shape`` (None: any shape), else a FAIL."""
    if not torch.is_tensor(out):
        fail(f"{what} returned {type(out).__name__}, expected a torch.Tensor", "return a tensor")
    if shape is not None and tuple(out.shape) != tuple(shape):
        fail(
            f"{what} returned shape {tuple(out.shape)}, expected {tuple(shape)}",
            "check which dimension you slice or concatenate; the batch and spatial size stay",
        )
    return out.detach()


def expect_array(out: Any, what: str) -> np.ndarray:
    """``out`` as a numpy array (a tensor is converted), else a FAIL."""
    if torch.is_tensor(out):
        out = out.detach().cpu().numpy()
    if not isinstance(out, np.ndarray):
        fail(f"{what} returned {type(out).__name__}, expected a numpy array", "return an array")
    return out


def expect_number(out: Any, what: str) -> float:
    """``out`` as a float (one-element tensors and arrays too; not bool), else a FAIL."""
    if torch.is_tensor(out) and out.numel() == 1:
        out = out.item()
    if isinstance(out, np.ndarray) and out.size == 1:
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        fail(f"{what} returned {type(out).__name__}, expected a number", "return a number")
    return float(out)


def expect_integer(out: Any, what: str, hint: str = "parameters are counted") -> int:
    """``out`` as an int (a whole float is accepted), else a FAIL with ``hint``."""
    value = expect_number(out, what)
    if value != int(value):  # (for nan or inf int() raises: 'could not check the result')
        fail(f"{what} returned {value}, expected a whole number", hint)
    return int(value)


# ---- tolerances --------------------------------------------------------------------------------


def close(a: Tensor, b: Tensor, atol: float, rtol: float = 0.0) -> bool:
    """Same shape and ``|a - b| <= atol + rtol |b|`` everywhere, compared in float64."""
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol, atol))


def same_db(a: float, b: float, tol: float = 1e-9) -> bool:
    """Two PSNR values agree within ``tol`` dB (``inf == inf`` included)."""
    return a == b or abs(a - b) <= tol
