"""The source's write pause ends before the cut-over fenced it (its --max-pause-ms bound):
writes the old primary acknowledges then are not on the new primary. The cut-over has taken
effect, but must not end quietly: exit 4, one line saying how many bytes of writes reached
the old primary after the final offset and what to do, a record saying so, and a rollback
still possible.

The window is held open by the fault proxy before the source: it stalls the cut-over's
fence (its ``CONFIG SET min-replicas-to-write``, before the server gets it) until the writer
has had writes acknowledged, which the source only does once its pause has ended by itself;
then the fence goes through. Conditions, never the clock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.faults import test_link_faults
from tests.faults.acked import lost_writes
from tests.faults.test_link_faults import Rig, _until
from tests.helpers import run_cli
from tests.sync.writes import Follow

rig = test_link_faults.rig  # the servers, the fault proxy (before the source) and the writer

PAUSE_MS = 2000  # the stalled fence outlasts it
FENCE = b"min-replicas-to-write\r\n$7\r\n1000000"  # the fence's CONFIG SET, on the wire


def _running(state: Path) -> str | None:
    try:
        return json.loads((state / "cutover.json").read_text()).get("running")
    except (OSError, ValueError):
        return None


def test_writes_after_the_final_offset_end_the_cutover_with_exit_4(rig: Rig) -> None:
    run = rig.sync()
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    rig.writer.wait_for(rig.writer.acknowledged + 20)
    before = len(rig.proxy.links)  # the sync's own links: never stalled
    rig.proxy.stall_at(lambda li, data: li.number > before and FENCE in data
                       and _running(rig.state) == "fence", delivered=False)
    cutover = Follow([sys.executable, "-m", "migrate", "cutover", "--state", str(rig.state),
                      "--yes", "--max-pause-ms", str(PAUSE_MS), "--verify-sample", "0"],
                     rig.state.parent / "cutover")
    _until(lambda: bool(rig.proxy.stalled_links()), cutover, "the cut-over inside its fence")
    # promoted, not fenced, the pause running or over: writes acknowledged from here on came
    # once the pause had ended, after the final offset
    paused_at = rig.writer.acknowledged
    rig.writer.wait_for(paused_at + 20, timeout=PAUSE_MS / 1000 + 30)
    rig.proxy.resume()  # the fence goes through: the writer's next write is refused
    code = cutover.wait(60)
    acknowledged = rig.writer.stop(refused="NOREPLICAS")
    err = cutover.err.read_text()
    errors = [ln for ln in err.splitlines() if ln.startswith("kvmigrate: error:")]
    assert code == 4 and len(errors) == 1, err[-3000:]
    record = json.loads((rig.state / "cutover.json").read_text())
    late = record["late_write_bytes"]
    assert late > 0 and not record["ok"] and record["took_effect"]
    assert record["running"] is None
    assert [s["detail"]["moved"] for s in record["steps"] if s["name"] == "offset-check"] \
        == [late]
    line = errors[0]
    assert f"the cut-over took effect (the target {rig.target.url} is the primary) but " \
           f"{late:,} bytes of writes reached the source" in line, line
    assert f"`kvmigrate verify --source {rig.proxy.url()} --target {rig.target.url}`" in line
    assert "it is fenced now, so no more arrive" in line and "kvmigrate rollback" in line
    assert "warning:" not in err  # not a warning that scrolls by
    # the writes the line is about: those acknowledged once the pause had ended, and only
    # those: none acknowledged before it is missing (the one in flight as the pause began
    # may have had its SET taken before it, and under load the sync, not yet stopped at the
    # cut-over's barrier, may still apply one or two after the pause ended: seen in a full
    # run with another test run beside it, the first missing write 3 after the count read)
    missing = sorted(int(k[4:]) for k in lost_writes(rig.target, acknowledged)
                     if k.startswith("ack:") and k[4:].isdigit())
    assert missing and missing[0] > paused_at, (paused_at, missing[:3])
    assert missing == list(range(missing[0], acknowledged + 1)), (acknowledged, missing[-3:])
    assert run.wait(30) == 0  # the promotion stopped the sync
    review = run_cli("report", "--state", str(rig.state), "--format", "markdown")
    assert review.code == 0, review.output[-3000:]
    assert "Cut-over: took effect (promoted at" in review.stdout, review.stdout
    assert f"but {late:,} bytes of writes reached the old primary after the final offset" \
        in review.stdout
    # the record is a cut-over that took effect: it can be rolled back, once the user says
    # the late writes may go (the rollback replaces the old primary's data)
    refused = run_cli("rollback", "--state", str(rig.state), "--yes")
    assert refused.code == 2 and "--discard-late-writes" in refused.stderr, refused.output
    assert f"left {late:,} bytes of writes on the old primary only" in refused.stderr
    back = run_cli("rollback", "--state", str(rig.state), "--yes", "--discard-late-writes")
    assert back.code == 0, back.output[-3000:]
    assert rig.source.client().config_get("min-replicas-to-write") == \
        {"min-replicas-to-write": "0"}
