"""A cut-over that was killed midway (SIGKILL, a lost terminal): what its record in
``cutover.json`` says and what to do next.

The cut-over saves its record as each step starts and ends, with the step under way in
``running``; a record read back with ``running`` set was never finished. Before promotion
nothing is lost by cutting over again: the source's pause ended by the server's own timeout
(``CLIENT PAUSE <max-pause-ms>``), so it serves writes again, and the sync went on. After
promotion, the cut-over has taken effect (at least in part) and running it again would
promote a target that is already the primary: the run stops and says what is left to do.
A cut-over killed inside its promote step may have promoted in part (a running sync told to
stop, the target's REPLICAOF NO ONE taken, its answer never read): the servers and the state
folder are asked, and the kill counts as after promotion when they say so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.errors import KvmError


def _done(record: dict[str, Any], step: str) -> bool:
    return any(s.get("name") == step and s.get("status") == "done"
               for s in record.get("steps", []))


def _pause_ms(record: dict[str, Any]) -> str:
    pause = next((s for s in record.get("steps", []) if s.get("name") == "pause"), None)
    bound = (pause or {}).get("detail", {}).get("max_pause_ms")
    return f"{bound} ms" if bound else "its --max-pause-ms"


class TookEffect(KvmError):
    """The killed cut-over promoted the target and fenced the source: it took effect."""


def stopped_where(record: dict[str, Any]) -> str:
    """Where a killed cut-over was: "during step 'fence'", "after step 'pause'"."""
    where = str(record.get("running"))
    return f"after step '{where[6:]}'" if where.startswith("after ") else \
        f"during step '{where}'"


def _began(record: dict[str, Any]) -> float:
    """When the killed cut-over began (its first step's start; time.time())."""
    return min((float(s.get("started", 0)) for s in record.get("steps", [])), default=0.0)


def earlier_cutover(record: dict[str, Any] | None, state_dir: Path,
                    fenced_now: Callable[[], bool] = lambda: False,
                    promotion_begun: Callable[[float], bool] = lambda _since: False,
                    restart: str = "--follow --resume") -> str | None:
    """A note when ``record`` is a killed cut-over's and cutting over again is safe; raise
    (exit 4, one line) when it was killed after promotion. None: no killed cut-over.
    ``fenced_now``: whether the source is fenced (asked only after a promotion: a kill
    during the fence step may come after the server took its CONFIG SET).
    ``promotion_begun(since)``: whether a promotion was made (in part) since that time (asked
    only of a kill inside the promote step: a running sync may have been told to stop, the
    target may have taken REPLICAOF NO ONE). ``restart``: the options that start the sync
    again in its mode (:func:`restart_options`)."""
    if not record or not record.get("running"):
        return None
    where = stopped_where(record)
    promoted = _done(record, "promote") or (
        record["running"] == "promote" and promotion_begun(_began(record)))
    if not promoted:
        paused = (" its write pause ended by the source's own bound "
                  f"({_pause_ms(record)}), and") if _done(record, "pause") else ""
        return (f"an earlier cut-over was stopped {where}, before promotion:{paused} the "
                "sync kept the target in step; cutting over again")
    if _done(record, "fence") or fenced_now():
        raise TookEffect(f"an earlier cut-over was stopped {where}: the target was promoted and "
                       "the source fenced, so the cut-over took effect; nothing to run again",
                       f"point clients at {record.get('target')}; {state_dir}/cutover.json "
                       "keeps that record")
    raise KvmError(f"an earlier cut-over was stopped {where}: the target was promoted (the "
                   "sync stopped) but the source was not fenced, so writes made to it since "
                   "are not on the target",
                   f"restart the sync with `kvmigrate sync ... --state {state_dir} {restart}"
                   f", remove {state_dir}/cutover.json, then run `kvmigrate cutover` again")


def restart_options(resumes: bool, runs_beside: bool) -> str:
    """How the sync of a mode starts again after a cut-over killed past promotion, the end
    of a command: ``--resume`` (native: the target replicates by itself again), with
    ``--follow`` when the cut-over needs the run beside it (``runs_beside``), or a new run
    for a mode that does not resume (proxy)."""
    if not resumes:
        return "--follow --flush-target` (this mode cannot resume)"
    return "--follow --resume`" if runs_beside else "--resume`"
