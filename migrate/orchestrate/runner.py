"""Running a playbook: each step in order, recorded in a ledger (``--resume`` skips what is
done), with gates; in dry-run nothing changes anywhere and every command is recorded.

``run:`` steps execute the kvmigrate command itself in a child process (so a step does
exactly what the operator would type, and its exit code decides), stderr passing through for
progress. In dry-run, read-only commands (preflight, verify, rdb inspect, convert-config to
stdout) run for real since they change nothing, commands that have a dry-run form run with
``--dry-run``, and the rest (sync) are only listed.

A ``background: true`` sync is started with ``--follow`` (its output in ``STATE/<step>.log``);
the run goes on once the sync's ledger says it follows the source, and every background sync
still running when the playbook ends (done or failed) gets SIGTERM and is waited for.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.endpoint import mask_url, mask_urls_in_text
from migrate.errors import KvmError, UsageError
from migrate.orchestrate.playbook import Playbook, Step, masked, substitute
from migrate.state.coordination import recorded_phase
from migrate.state.ledger import Ledger
from migrate.state.paths import StatePaths

READ_ONLY = {"preflight", "verify", "rdb inspect", "convert-config"}
HAS_DRY_RUN = {"cutover", "rollback", "copy"}
BACKGROUND_READY_S = 24 * 3600.0  # how long a background sync may take to catch up
BACKGROUND_STOP_S = 60.0

Notify = Callable[[str], None]
Approve = Callable[[str], bool]


@dataclass
class StepOutcome:
    name: str
    kind: str
    op: str
    status: str  # done, skipped, planned, failed, already-done
    commands: list[str] = field(default_factory=list)
    output: str = ""
    exit_code: int | None = None
    started: float | None = None
    ended: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "kind", "op", "status", "commands",
                                              "output", "exit_code", "started", "ended",
                                              "note")}


@dataclass
class RunResult:
    playbook: str
    dry_run: bool
    vars: dict[str, str]
    steps: list[StepOutcome] = field(default_factory=list)
    ok: bool = False
    error: str | None = None


def to_args(params: dict[str, Any]) -> list[str]:
    """``{"max_pause_ms": 1500, "yes": True, "scripts": [a, b], "args": [f]}`` -> ``f
    --max-pause-ms 1500 --yes --scripts a --scripts b`` (``args`` are positional)."""
    args: list[str] = [str(a) for a in params.get("args", [])]  # positional arguments
    for key, value in params.items():
        if key == "args":
            continue
        flag = "--" + key.replace("_", "-")
        if value is None or value is False or value == "":
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def shown(argv: list[str]) -> str:
    """A command line for display: passwords in URLs masked."""
    return shlex.join(["kvmigrate", *(mask_url(a) for a in argv)])


class PlaybookRunner:
    def __init__(self, playbook: Playbook, values: dict[str, str], *, state_dir: Path,
                 dry_run: bool = False, resume: bool = False, notify: Notify = lambda _m: None,
                 approve: Approve | None = None):
        self.playbook = playbook
        self.values = values
        self.state_dir = state_dir
        self.dry_run = dry_run
        self.resume = resume
        self.notify = notify
        self.approve = approve
        self.result = RunResult(playbook.name, dry_run, masked(values, playbook))
        self._background: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._env: dict[str, str] | None = None

    def run(self) -> RunResult:
        if self.dry_run:
            for step in self.playbook.steps:
                self.result.steps.append(self._execute(step))
            self.result.ok = all(s.status != "failed" for s in self.result.steps)
            return self.result
        run = {"playbook": self.playbook.name, "vars": self.result.vars}
        with Ledger.open(self.state_dir, run=run, resume=self.resume) as ledger:
            try:
                self._steps(ledger)
            finally:
                self._stop_background()
        self.result.ok = True
        return self.result

    def _steps(self, ledger: Ledger) -> None:
        for step in self.playbook.steps:
            if ledger.done(step.name) and not (step.background and self._later_undone(
                    ledger, step)):
                self.notify(f"[{step.name}] done in an earlier run: skipped")
                self.result.steps.append(StepOutcome(step.name, step.kind, step.op,
                                                     "already-done"))
                continue
            with ledger.phase(step.name) as counters:
                outcome = self._execute(step)
                self.result.steps.append(outcome)
                counters.update(status=outcome.status, commands=outcome.commands,
                                exit_code=outcome.exit_code)
                if outcome.output.strip() and step.kind == "run":
                    tail = outcome.output.strip().splitlines()[-15:]
                    self.notify("\n".join(f"  {line}" for line in tail))
                if outcome.status == "failed":
                    self.result.error = f"step {step.name!r} failed: {outcome.note}"
                    raise KvmError(self.result.error, "fix the cause, then rerun with "
                                   "--resume to continue from this step")

    def _later_undone(self, ledger: Ledger, step: Step) -> bool:
        """A background sync done in an earlier run is started again (``--resume``) when a
        later step still has to run: that step (a cut-over) needs it running."""
        later = self.playbook.steps[self.playbook.steps.index(step) + 1:]
        return any(not ledger.done(s.name) for s in later)

    # --- steps -------------------------------------------------------------------------
    def _execute(self, step: Step) -> StepOutcome:
        outcome = StepOutcome(step.name, step.kind, step.op, "done", started=time.time())
        if step.when and not self.values.get(step.when):
            outcome.status, outcome.note = "skipped", f"variable {step.when} is not set"
            outcome.ended = time.time()
            return outcome
        params = substitute(step.params, self.values)
        self.notify(f"[{step.name}] {step.kind} {step.op}"
                    + (" (dry run)" if self.dry_run else ""))
        if step.kind == "run":
            self._run_command(step, params, outcome)
        elif step.kind == "remote":
            self._remote(step, params, outcome)
        else:
            self._gate(step, params, outcome)
        outcome.ended = time.time()
        return outcome

    def _run_command(self, step: Step, params: dict[str, Any], outcome: StepOutcome) -> None:
        argv = [*step.op.split(), *to_args(params)]
        if step.background and "--follow" not in argv:
            argv.append("--follow")
        outcome.commands.append(shown(argv))
        argv, self._env = _urls_to_env(step.op, params, argv)
        if step.background:
            outcome.note = "runs in the background until the cut-over; the next step starts " \
                           "once it follows the source"
        if self.dry_run:
            if step.op in HAS_DRY_RUN:
                argv.append("--dry-run")
            elif step.op == "convert-config":
                argv = _without_option(argv, ("-o", "--output"))
            elif step.op not in READ_ONLY:
                outcome.status = "planned"
                return
        if step.background:
            self._start_background(step, params, argv, outcome)
            return
        proc = subprocess.run([sys.executable, "-m", "migrate", *argv], stdout=subprocess.PIPE,
                              stderr=None if not self.dry_run else subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL, env=self._env)
        outcome.exit_code = proc.returncode
        outcome.output = proc.stdout[-20000:]
        if self.dry_run:
            outcome.status = "planned"
            outcome.note = (proc.stderr or "").strip()[-2000:]
            return
        if proc.returncode != 0:
            outcome.status = "failed"
            outcome.note = f"kvmigrate {step.op} exited {proc.returncode}"

    # --- background syncs ----------------------------------------------------------------
    def _start_background(self, step: Step, params: dict[str, Any], argv: list[str],
                          outcome: StepOutcome) -> None:
        state = Path(str(params["state"]))
        if self.resume and StatePaths(state).ledger.exists():
            argv.append("--resume")
            outcome.commands[-1] += " --resume"
        if self.dry_run:
            outcome.status = "planned"
            return
        log = self.state_dir / f"{step.name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "migrate", *argv],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self._env)
        self._background.append((step.name, proc))
        self.notify(f"[{step.name}] started in the background (pid {proc.pid}, output in "
                    f"{log}); waiting until it follows the source")
        deadline = time.monotonic() + BACKGROUND_READY_S
        while True:
            if proc.poll() is not None:
                outcome.exit_code = proc.returncode
                outcome.status = "failed"
                outcome.output = _tail(log)
                outcome.note = f"kvmigrate sync exited {proc.returncode} before following " \
                               f"the source (see {log})"
                return
            if recorded_phase(state) == "follow":
                outcome.note = f"following the source in the background (pid {proc.pid})"
                return
            if time.monotonic() > deadline:
                outcome.status = "failed"
                outcome.note = "the background sync did not catch up in time"
                return
            time.sleep(0.2)

    def _stop_background(self) -> None:
        for name, proc in self._background:
            if proc.poll() is None:
                self.notify(f"[{name}] stopping the background sync (pid {proc.pid})")
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(BACKGROUND_STOP_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._background.clear()

    def _remote(self, step: Step, params: dict[str, Any], outcome: StepOutcome) -> None:
        if "host" not in params:
            raise UsageError(f"step {step.name!r}: remote steps need `host: ssh://USER@HOST`")
        from migrate.remote.ssh import RemoteHost, SshTarget  # paramiko: only for SSH steps

        host = RemoteHost(SshTarget.parse(str(params["host"])), key_file=params.get("key"),
                          known_hosts=params.get("known_hosts"),
                          accept_new_host_key=bool(params.get("accept_new_host_key")),
                          dry_run=self.dry_run)
        try:
            op = step.op
            if op == "fetch":
                host.fetch(str(params["remote"]), Path(str(params["local"])))
            elif op == "push":
                host.push(Path(str(params["local"])), str(params["remote"]))
            elif op == "run":
                argv = params["argv"] if isinstance(params["argv"], list) else \
                    shlex.split(str(params["argv"]))
                outcome.output = host.run([str(a) for a in argv]).stdout[-20000:]
            elif op == "service":
                host.service(str(params["action"]), str(params["name"]))
            elif op == "check-disk":
                free = host.free_disk(str(params["path"]))
                need = int(params.get("min_bytes", 0))
                outcome.output = f"{free} bytes free"
                if not self.dry_run and free < need:
                    raise KvmError(f"{host.target.display()}: {free:,} bytes free on "
                                   f"{params['path']}, need {need:,}")
            elif op == "check-memory":
                avail = host.available_memory()
                need = int(params.get("min_bytes", 0))
                outcome.output = f"{avail} bytes available"
                if not self.dry_run and avail < need:
                    raise KvmError(f"{host.target.display()}: {avail:,} bytes of memory "
                                   f"available, need {need:,}")
        except KeyError as exc:
            raise UsageError(f"step {step.name!r}: remote {step.op} needs `{exc.args[0]}`") \
                from None
        finally:
            host.close()
        outcome.commands += [f"{host.target.display()}: {c}" for c in host.planned]
        if self.dry_run:
            outcome.status = "planned"

    def _gate(self, step: Step, params: dict[str, Any], outcome: StepOutcome) -> None:
        if step.op == "postpone":
            path = Path(str(params.get("file", "")))
            outcome.commands.append(f"wait while {path} exists")
            if self.dry_run:
                outcome.status = "planned"
                return
            if path.exists():
                self.notify(f"[{step.name}] postponed while {path} exists; remove it to go on")
            while path.exists():
                time.sleep(0.5)
            return
        message = mask_urls_in_text(str(params.get("message", f"approve step {step.name}")))
        outcome.commands.append(f"manual approval: {message}")
        if self.dry_run:
            outcome.status = "planned"
            return
        if self.approve is None or not self.approve(message):
            outcome.status = "failed"
            outcome.note = "not approved"


def _without_option(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in names:
            skip = True
            continue
        out.append(arg)
    return out


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return mask_urls_in_text("\n".join(text.splitlines()[-lines:]))


# Commands that read --source / --target from KVMIGRATE_SOURCE_URL / KVMIGRATE_TARGET_URL.
URLS_FROM_ENV = {"preflight": ("source", "target"), "sync": ("source", "target"),
                 "verify": ("source", "target"), "cutover": ("source", "target"),
                 "rollback": ("source", "target"), "copy": ("target",)}


def _urls_to_env(op: str, params: dict[str, Any],
                 argv: list[str]) -> tuple[list[str], dict[str, str] | None]:
    """URLs with a password go to the child through its environment, not its command line
    (which any user of the machine can read with ps)."""
    env: dict[str, str] = {}
    for name in URLS_FROM_ENV.get(op, ()):
        value = params.get(name)
        if not isinstance(value, str) or mask_url(value) == value:
            continue  # absent, or nothing secret in it
        flag = f"--{name}"
        if flag in argv:
            i = argv.index(flag)
            argv = argv[:i] + argv[i + 2:]
            env[f"KVMIGRATE_{name.upper()}_URL"] = value
    return argv, ({**os.environ, **env} if env else None)
