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
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
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
    "isolated",
    "need_any",
    "same_db",
    "seeded",
]

NOT_IMPLEMENTED = "not implemented yet: write the function body"


@dataclass
class CheckResult:
    """What a checker found: ``passed`` and the printed ``lines`` (one per sub-check)."""

    name: str
    passed: bool
    lines: list[str]
    n_checks: int
    n_failed: int
    not_implemented: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        if self.passed:
            return f"{self.name}: all {self.n_checks} checks passed"
        return f"{self.name}: {self.n_failed} of {self.n_checks} checks failed"


class Fail(Exception):
    """A sub-check failed: ``detail`` says what was wrong, ``hint`` how to fix it."""

    def __init__(self, detail: str, hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


def fail(detail: str, hint: str | None = None) -> NoReturn:
    """End the current sub-check with a FAIL line: ``detail``, then ``Hint: hint``."""
    raise Fail(detail, hint)


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
    """Runs the sub-checks of one checker, prints their lines, and decides what to raise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.n_checks = self.n_failed = 0
        self.missing: dict[str, int] = {}  # stub name -> further failed checks that needed it

    def _emit(self, line: str) -> None:
        print(line)
        self.lines.append(line)

    def check(self, label: str, fn: Callable[[], str | None], who: str | None = None) -> None:
        """Run one sub-check; ``fn`` returns None (or a short note) or raises :class:`Fail`.
        ``who`` names the student function a NotImplementedError most likely came from."""
        self.n_checks += 1
        try:
            with isolated():
                note = fn()
        except Fail as f:
            self.n_failed += 1
            hint = f" Hint: {f.hint}" if f.hint else ""
            self._emit(f"FAIL: {label}: {f.detail.rstrip('.')}.{hint}")
        except NotImplementedError as err:
            self.n_failed += 1
            stub = _stub_name(err, who or self.name)
            # one line per stub, not one per sub-check: an untouched exercise stays readable
            if stub in self.missing:
                self.missing[stub] += 1
            else:
                self.missing[stub] = 0
                self._emit(f"FAIL: {label}: {stub} is {NOT_IMPLEMENTED}.")
        except Exception as err:  # the checker met something it did not expect: still a FAIL
            self.n_failed += 1
            self._emit(
                f"FAIL: {label}: could not check the result ({type(err).__name__}: {_short(err)})."
            )
        else:
            self._emit(f"PASS: {label}" + (f" ({note})" if note else ""))

    def finish(self) -> CheckResult:
        """Return the result if every sub-check passed, else raise (see the module docstring)."""
        for who, extra in self.missing.items():
            if extra:
                self._emit(f"      ({extra} more check{'s' * (extra > 1)} also need {who})")
        result = CheckResult(
            self.name,
            self.n_failed == 0,
            list(self.lines),
            self.n_checks,
            self.n_failed,
            list(self.missing),
        )
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
