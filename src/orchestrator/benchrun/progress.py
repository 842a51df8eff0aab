"""Progress while a run goes: tqdm bars on a terminal, plain lines otherwise, always on stderr.

tqdm rather than rich: it is one small pure-Python package with no
dependencies, writes to stderr by default and redraws in place, which is all a
progress bar here needs; rich would bring a whole rendering framework for it.
When stderr is not a terminal (CI logs, ``make bench > log``) bars would be
noise, so each step is one plain line instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "Task"]


class Task:
    """One suite's progress: ``advance()`` once per step, ``note()`` for what is running now."""

    def __init__(self, progress: Progress, name: str, total: int) -> None:
        self._progress, self.name, self.total, self.done = progress, name, max(0, total), 0
        self._bar = None
        if progress.bars:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total or None, desc=f"{name:<14}", file=progress.stream, leave=True,
                             dynamic_ncols=True, unit="step")

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)
        else:
            self._progress.line(f"{self.name}: {text}")

    def grow(self, total: int) -> None:
        """The step count was an estimate (pytest collected more or fewer tests)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
        else:
            total = f"/{self.total}" if self.total else ""
            self._progress.line(f"{self.name}: {self.done}{total}" + (f" {note}" if note else ""))

    def close(self, status: str = "") -> None:
        if self._bar is not None:
            if status:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.close()
        elif status:
            self._progress.line(f"{self.name}: {status}")


class Progress:
    """Bars when ``stream`` is a terminal (or ``bars=True``), plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, bars: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bars = (isatty if bars is None else bars) and not quiet
        self.quiet = quiet
        self._t0 = time.monotonic()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        print(f"[bench {time.monotonic() - self._t0:6.1f}s] {text}", file=self.stream, flush=True)

    def task(self, name: str, total: int) -> Task:
        return Task(self, name, total)
