"""Progress of a long operation on stderr: a Rich bar with a total, a percentage and an ETA on
a terminal (one line, within the terminal's width); a plain line per interval otherwise (no
escape codes in logs), and a last line with the final figures either way.

Plain form, one line each::

    verify: 51,200/200,000 keys (25%), 4,112 keys/s, ETA 0:00:36
    verify: 200,000/200,000 keys (100%), done in 0:00:49
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from migrate.cli.console import err
from migrate.sync.progress import clock, human_bytes

PLAIN_INTERVAL_S = 2.0


class Meter:
    """``with Meter("verify", "keys", total) as m: m.update(done)``; ``total`` may be None
    (unknown: no percentage or ETA) or change while running (``update(done, total=...)``).
    ``unit`` "bytes" shows sizes as kB/MB/GB; ``estimate`` labels the total as one."""

    def __init__(self, what: str, unit: str, total: int | None = None, *,
                 estimate: bool = False, console: Console = err,
                 interval: float = PLAIN_INTERVAL_S, extra: str = ""):
        self.what, self.unit, self.total, self.estimate = what, unit, total, estimate
        self.console, self.interval, self.extra = console, interval, extra
        self.done = 0
        self.started = time.monotonic()
        self._last_line: float | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    # --- figures ---------------------------------------------------------------------
    def _amount(self, n: float) -> str:
        return human_bytes(n) if self.unit == "bytes" else f"{n:,.0f}"

    def figures(self, final: bool = False) -> str:
        """``12,345/200,000 keys (6%)``, with the rate and ETA while running."""
        unit = "" if self.unit == "bytes" else f" {self.unit}"
        total = self.total
        if total is not None:
            approx = "~" if self.estimate else ""
            pct = 100 if total <= 0 else min(100, self.done * 100 // total)
            text = (f"{self._amount(self.done)}/{approx}{self._amount(total)}{unit} ({pct}%"
                    + (", total estimated" if self.estimate else "") + ")")
        else:
            text = f"{self._amount(self.done)}{unit}"
        elapsed = time.monotonic() - self.started
        if final:
            return f"{text}, done in {clock(elapsed)}"
        rate = self.done / elapsed if elapsed >= 0.5 else 0.0  # too early for a rate
        if rate > 0:
            text += (f", {human_bytes(rate)}/s" if self.unit == "bytes"
                     else f", {rate:,.0f} {self.unit}/s")
        if total is not None and rate > 0 and self.done < total:
            text += f", ETA {clock((total - self.done) / rate)}"
        return text

    # --- output ----------------------------------------------------------------------
    def __enter__(self) -> Meter:
        self.started = time.monotonic()
        if self.console.is_terminal:
            columns = [TextColumn("{task.description}"), BarColumn(bar_width=16),
                       TaskProgressColumn(), TextColumn("{task.fields[figures]}"),
                       TextColumn("ETA"), TimeRemainingColumn()]
            self._bar = Progress(*columns, console=self.console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, figures="")
            self._refresh()
        elif self.total is not None:  # the first line once there is a total to show
            self._plain(force=True)
        return self

    def update(self, done: int, total: int | None = None, what: str | None = None,
               extra: str | None = None, unit: str | None = None) -> None:
        if what is not None and what != self.what:  # a new phase: its own clock and line
            if self.total is not None:  # the phase that ended is complete
                self.done = self.total
            if self._bar is None and (self.done or self.total):
                self.close(final=True)  # its final figures
            self.what, self.started = what, time.monotonic()
            self._last_line = None
            if self._bar is not None and self._task is not None:
                self._bar.reset(self._task)
        if unit is not None:
            self.unit = unit
        self.done = done
        if total is not None:
            self.total = total
        if extra is not None:
            self.extra = extra
        self._refresh()

    def _refresh(self) -> None:
        if self._bar is not None and self._task is not None:
            shown = f"{self._amount(self.done)}" + (
                f"/{self._amount(self.total)}" if self.total is not None else "")
            if self.unit != "bytes":
                shown += f" {self.unit}"
            if self.extra:
                shown += f"  {self.extra}"
            self._bar.update(self._task, description=self.what, completed=self.done,
                             total=self.total, figures=shown)
        else:
            self._plain()

    def _plain(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.total is None and not self.done:
            return  # nothing to say yet
        if force or self._last_line is None or now - self._last_line >= self.interval:
            self._last_line = now
            extra = f"; {self.extra}" if self.extra else ""
            self.console.print(f"{self.what}: {self.figures()}{extra}", markup=False,
                               highlight=False)

    def finish(self, done: int | None = None, complete: bool = True) -> None:
        """The last figures; ``complete``: the work is all done, so done is the total."""
        if done is not None:
            self.done = done
        if complete:  # what was counted at the start may have moved: the end is the total
            self.total = self.done
        self.close(final=True)

    def close(self, final: bool = False) -> None:
        if self._bar is not None:
            if self._task is not None:
                self._refresh()
            self._bar.stop()
            self._bar = None
            if final:
                self.console.print(f"{self.what}: {self.figures(final=True)}", markup=False,
                                   highlight=False)
        elif final:
            extra = f"; {self.extra}" if self.extra else ""
            self.console.print(f"{self.what}: {self.figures(final=True)}{extra}", markup=False,
                               highlight=False)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(final=False)
