"""The spool folder removed under a running sync (issue 19): something other than kvmigrate
(a clean-up of temporary folders) deletes ``--state DIR/spool`` while the replication link
receives the RDB. The link thread's next file (the stream's, once the RDB is in) cannot be
created: the run stops with one line naming the removed folder (exit 4), never a bare
"No such file or directory" blamed on the replication link, and ``--resume`` continues.

The window is held open by the fault proxy, not by the clock: the RDB trickles down the
replication link, the folder is removed once the loader has the RDB file open and is
loading it, then the trickle ends and the transfer completes into the removed file."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.faults import test_link_faults
from tests.faults.test_link_faults import Rig, _record, _stopped, _until
from tests.sync.writes import stop

rig = test_link_faults.rig  # the servers, the fault proxy and the writer


def test_the_spool_folder_removed_mid_rdb_stops_with_one_line(rig: Rig) -> None:
    rig.writer.wait_for(50)
    rig.proxy.trickle(32 * 1024)  # the RDB: 32 KiB a second
    run = rig.sync()
    spool = rig.state / "spool"
    _until(lambda: (spool / "rdb-1.rdb").exists() and rig.target.client().dbsize() > 0, run,
           "the RDB arriving and being loaded")
    shutil.rmtree(spool)
    removed = time.monotonic()
    rig.proxy.resume()  # the rest of the RDB arrives; then the stream's file is needed
    err, line = _stopped(run, f"the folder {spool} was removed while the run was using it "
                              "(at stream-1.bin)")
    assert "replication link failed" not in err and "Errno" not in line, err[-3000:]
    assert "--resume" in line, line
    acknowledged, lost, recover_s = rig.resume(removed, "replica link up")
    _record("the spool folder removed by another program mid-RDB", "stopped: exit 4, "
            "'the folder STATE/spool was removed while the run was using it (at "
            "stream-1.bin)'; --resume continued", acknowledged, lost, recover_s,
            "time includes the resumed run's full sync")


@pytest.mark.parametrize("rig", ["target"], indirect=True)
def test_the_spool_folder_removed_before_the_replay_opens_the_stream(rig: Rig) -> None:
    """The other order: the link already writes the stream's file (it holds it open, so it
    writes on into the removed file) when the folder goes, and the replay has not opened it
    yet (the load is held: the target's link stalls at the proxy). The replay must not wait
    for a file that cannot appear: the same one line, exit 4."""
    rig.writer.wait_for(50)
    run = rig.sync()
    spool = rig.state / "spool"
    _until(lambda: rig.target.client().dbsize() > 0, run, "the load under way")
    assert rig.proxy.stall() > 0  # the loader's writes wait: the load cannot end
    _until(lambda: (spool / "stream-1.bin").exists(), run, "the stream's file made")
    shutil.rmtree(spool)
    removed = time.monotonic()
    rig.proxy.resume()
    err, _line = _stopped(run, f"the folder {spool} was removed while the run was using it "
                              "(at stream-1.bin)")
    assert "no replication progress" not in err, err[-3000:]
    acknowledged, lost, recover_s = rig.resume(removed, "replica link up")
    _record("the spool folder removed by another program after the RDB, before the replay "
            "opened the stream", "stopped: exit 4, 'the folder STATE/spool was removed while "
            "the run was using it (at stream-1.bin)'; --resume continued", acknowledged, lost,
            recover_s, "it waited for the stream's file before (no replication progress)")


def test_a_state_folder_another_run_took_keeps_its_spool_and_pidfile(rig: Rig) -> None:
    """The folder was made again under a running sync and another kvmigrate locked it (its
    pid in ``kvmigrate.pid``: what a wiped and re-created test folder looks like to a run
    still going there). The first run, ending, must not remove by path what is now the
    other's: its spool and its pidfile stay, and the run says so."""
    run = rig.sync()
    _until(lambda: "following the source" in run.err.read_text(), run, "the follow phase")
    other = os.getpid()  # a live process that is not the sync
    (rig.state / "kvmigrate.pid").write_text(f"{other}\n")
    code, _out, err = stop(run)
    assert code == 0, err[-3000:]
    assert f"is now another kvmigrate's (pid {other}" in err, err[-3000:]
    assert (rig.state / "spool").is_dir()
    assert (rig.state / "kvmigrate.pid").read_text() == f"{other}\n"
