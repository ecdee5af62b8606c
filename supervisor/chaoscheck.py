"""`python -m supervisor chaos --check`: chaos with a recorded workload, then proof.

1. start the workload (cluster/workload.py: K client threads, put / linearizable
   get / delete / cas on a small key set, every op recorded on one clock); with
   `--via grpc` the clients speak etcd's v3 API to the members' gRPC faces
   (cluster/etcd_client.py), as etcd clients would;
2. run the chaos schedule for --duration (SIGKILL random nodes and the leader,
   SIGSTOP pauses longer than the election timeout, drop-traffic isolating a
   node - the leader or a follower - and, with 5+ nodes, splitting the cluster
   into its largest minority | a majority; with `--supervisor`, SIGKILL the
   supervisor too, whose nodes keep serving until a new one adopts them);
3. heal: chaos SIGCONTs every paused node and lifts every drop as it ends; stop
   the workload; wait for the supervisor to have restarted every killed node and
   for one leader;
4. a linearizable read of every key (recorded in the history too);
5. convergence: every replica at the same applied index with the same state
   (supervisor/convergence.py says exactly how);
6. check: `cluster.check` in-process (linearizable?), `direct.lost_writes`
   against the final reads, `direct.revision_regressions`; ok/fail/info counts;
   the longest window with no successful operation.

Saved under DATA_DIR/chaos-<UTC timestamp>/: history.jsonl, report.json,
throughput.html (ops/s with the fault events marked) and, when not
linearizable, timeline.html (the checker's counterexample). Exit 0 only if
linearizable, 0 lost writes, no revision regression and converged; 1 otherwise.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from cluster.check import CheckResult, Verdict, check_history, lost_writes, revision_regressions, save_jsonl, write_html
from cluster.check.history import Operation, Outcome
from cluster.client import ClientError
from cluster.discovery import Layout
from cluster.etcd_client import EtcdClient
from cluster.spec import SpecError, load_spec
from cluster.workload import History, Workload, WorkloadOptions, final_reads
from supervisor import throughput
from supervisor.chaos import Chaos, ChaosOptions, require_fault_injection
from supervisor.control import ControlError, load_state
from supervisor.convergence import Convergence, compare_replicas, wait_healed
from supervisor.statefile import supervisor_process

HEAL_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 30.0
CHECK_TIMEOUT = 30.0  # search budget per key
MINIMIZE_BUDGET = 3.0  # per failing key: the counterexample is shrunk this long at most
MAX_KEY_LINES = 40  # of each failing key's description in the text report
EVENT_WORDS = ("SIGKILL", "SIGSTOP", "SIGCONT", "DROP", "SPLIT", "HEAL", "SUPERVISOR")


@dataclass(frozen=True, slots=True)
class CheckOptions:
    clients: int = 4
    keys: int = 5
    op_timeout: float = 2.0
    max_ops: int = 1_000_000  # the workload's op budget, in all
    via: str = "native"  # "native" (the ZeroMQ client protocol) or "grpc" (etcd's v3 API)
    heal_timeout: float = HEAL_TIMEOUT
    converge_timeout: float = CONVERGE_TIMEOUT


class RecordingChaos(Chaos):
    """Chaos that also notes each fault event on the workload's clock, and counts."""

    def __init__(self, layout: Layout, options: ChaosOptions, out: TextIO, history: History) -> None:
        super().__init__(layout, options, out)
        self.history = history
        self.events: list[tuple[float, str]] = []
        self.counts = {"kill": 0, "pause": 0, "drop": 0, "split": 0, "supervisor": 0, "leader": 0}

    def say(self, message: str) -> None:
        super().say(message)
        if message.startswith(EVENT_WORDS):
            self.events.append((round(self.history.clock(), 3), message))
            if "(leader" in message and message.startswith(("SIGKILL", "SIGSTOP", "DROP", "SPLIT")):
                self.counts["leader"] += 1

    def _event(self) -> str | None:
        action = super()._event()
        if action:
            self.counts[action] += 1
        return action


def schedule(options: ChaosOptions, layout: Layout) -> ChaosOptions:
    """The check's fault schedule: pauses, isolations and (5+ nodes) minority |
    majority splits on (kills too unless --no-kill), half the faults aimed at the
    leader (--leader: all), pauses and drops at least 3x the longest election
    timeout."""
    try:
        timing = load_spec(layout.config).timing
        longest_election = 2 * timing.election_ticks * timing.tick_ms / 1000
    except (OSError, SpecError):
        longest_election = 1.0
    return replace(options, pause=True, drop=True, split=True,
                   leader_odds=0.0 if options.leader else 0.5,
                   pause_for=max(options.pause_for, round(3 * longest_election, 2)),
                   drop_for=max(options.drop_for, round(3 * longest_election, 2)))


def longest_gap(ops: list[Operation], start: float, end: float) -> tuple[float, float]:
    """(length, start) of the longest window in [start, end] with no ok completion."""
    times = sorted(op.complete for op in ops if op.outcome is Outcome.OK and op.complete is not None
                   and start <= op.complete <= end)
    points = [start, *times, end]
    best = (0.0, start)
    for a, b in zip(points, points[1:]):
        if b - a > best[0]:
            best = (b - a, a)
    return best


def run(layout: Layout, options: ChaosOptions, out: TextIO, check: CheckOptions = CheckOptions()) -> int:
    state = load_state(layout)
    if supervisor_process(state) is None:
        raise ControlError("no supervisor is running for this cluster: chaos needs one to restart nodes")
    if (options.drop or options.split) and not options.partition:
        require_fault_injection(state, "chaos --check")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    outdir = layout.root / f"chaos-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    native = [n.client for n in state.nodes]  # the final reads use the native client either way
    endpoints = native
    factory = None
    if check.via == "grpc":
        endpoints = [n.grpc for n in state.nodes if n.grpc]
        if not endpoints:
            raise ControlError("--via grpc: no node of this cluster has an etcd gRPC endpoint (config `grpc`)")
        factory = grpc_clients
    # Fresh keys every run: the checker's model starts from "absent", so keys an
    # earlier run (or anyone) wrote must not be reused.
    wopts = WorkloadOptions(clients=check.clients, keys=check.keys, duration=options.duration + 3600,
                            op_timeout=check.op_timeout, max_ops=check.max_ops, seed=options.seed or 0,
                            key_prefix=f"chaos/{stamp}/k")
    history = History(time.monotonic())
    workload = Workload(endpoints, wopts, history, client_factory=factory)
    chaos = RecordingChaos(layout, schedule(options, layout), out, history)
    print(f"chaos --check: {check.clients} clients on {check.keys} keys via {check.via}; results in {outdir}",
          file=out, flush=True)
    workload.start()
    try:
        chaos.run()
    finally:
        chaos_end = history.clock()
        workload.stop()
        workload.join()
    healed = wait_healed(lambda: load_state(layout), check.heal_timeout)
    chaos.events.append((round(history.clock(), 3), "HEALED: every node up, one leader" if healed
                         else f"NOT HEALED within {check.heal_timeout:g} s"))
    chaos.say(f"healed: {'yes' if healed else 'NO'}")
    keys = wopts.key_names()
    final: dict[str, Any] | None
    try:
        final = final_reads(native, keys, history)
    except ClientError as error:
        chaos.say(f"final reads failed: {error}")
        final = None
    convergence = compare_replicas(load_state(layout), check.converge_timeout)
    # Unavailability is measured only while the workload ran (it stops early if
    # its op budget runs out).
    workload_end = min(chaos_end, workload.last_exit)
    report, result = evaluate(history, chaos, final, convergence, workload_end, healed)
    report["workload_budget_spent"] = workload.budget_spent
    report["chaos_s"] = round(chaos_end, 3)
    _save(outdir, history, chaos, report, result)
    print(format_report(report), file=out, flush=True)
    return 0 if report["passed"] else 1


def grpc_clients(endpoints: Sequence[str], options: WorkloadOptions) -> Any:
    """A workload client that speaks etcd's v3 API (the KV subset the workload uses)."""
    return EtcdClient(endpoints, timeout=options.op_timeout)


def evaluate(history: History, chaos: RecordingChaos, final: dict[str, Any] | None,
             convergence: Convergence, chaos_end: float, healed: bool) -> tuple[dict[str, Any], CheckResult]:
    ops = list(history.operations)
    started = time.monotonic()
    result = check_history(ops, timeout=CHECK_TIMEOUT, minimize_budget=MINIMIZE_BUDGET)
    lost = lost_writes(ops, final) if final is not None else []
    regressions = revision_regressions(ops)
    counts = {o.value: sum(1 for op in ops if op.outcome is o) for o in Outcome}
    gap, gap_at = longest_gap([op for op in ops if op.process != "final"], 0.0, chaos_end)
    linearizable = result.verdict is Verdict.LINEARIZABLE
    passed = (linearizable and final is not None and not lost and not regressions and convergence.converged)
    return {
        "passed": passed, "seed": chaos.seed, "duration_s": round(chaos_end, 3), "healed": healed,
        "verdict": result.verdict.value, "linearizable": linearizable,
        "check_seconds": round(time.monotonic() - started, 3),
        "failing_keys": [_shorten(k.describe()) for k in result.keys if k.verdict is not Verdict.LINEARIZABLE],
        "final_reads": final, "lost_writes": len(lost) if final is not None else None,
        "lost": [w.describe() for w in lost[:20]],
        "revision_regressions": len(regressions), "regressions": [r.describe() for r in regressions[:20]],
        "ops": len(ops), "ok": counts["ok"], "fail": counts["fail"], "info": counts["info"],
        "ok_per_s": round(counts["ok"] / chaos_end, 1) if chaos_end > 0 else 0.0,
        "faults": {k: v for k, v in chaos.counts.items()}, "faults_total": sum(
            chaos.counts[k] for k in ("kill", "pause", "drop", "split", "supervisor")),
        "max_unavailable_s": round(gap, 3), "max_unavailable_at_s": round(gap_at, 3),
        "convergence": convergence.to_dict(), "converged": convergence.converged,
        "events": [{"t": t, "event": e} for t, e in chaos.events],
    }, result


def _shorten(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_KEY_LINES:
        return text
    half = MAX_KEY_LINES // 2
    return "\n".join(lines[:half] + [f"    ... {len(lines) - 2 * half} lines left out (timeline.html has all)"]
                     + lines[-half:])


def format_report(report: dict[str, Any]) -> str:
    conv = report["convergence"]
    faults = report["faults"]
    lines = [
        f"chaos check: {'PASS' if report['passed'] else 'FAIL'} (seed {report['seed']})",
        f"  linearizable:        {'yes' if report['linearizable'] else 'NO'} ({report['verdict']}, "
        f"checked in {report['check_seconds']} s)",
        f"  lost writes:         {report['lost_writes'] if report['lost_writes'] is not None else 'UNKNOWN'}",
        f"  revision regressions: {report['revision_regressions']}",
        f"  ops:                 {report['ops']} ({report['ok']} ok, {report['fail']} fail, {report['info']} info;"
        f" {report['ok_per_s']} ok/s over {report['duration_s']} s)",
        f"  faults injected:     {report['faults_total']} ({faults['kill']} kills, {faults['pause']} pauses, "
        f"{faults['drop']} isolations, {faults['split']} splits, {faults.get('supervisor', 0)} supervisor kills; "
        f"{faults['leader']} aimed at the leader)",
        f"  max unavailability:  {report['max_unavailable_s']} s (from t={report['max_unavailable_at_s']} s)",
        f"  converged:           {'yes' if report['converged'] else 'NO'} ({conv['reason']}; applied index "
        f"{conv['applied_index']}, {len(conv['replicas'])} replicas)",
    ]
    if report.get("workload_budget_spent"):
        lines.append(f"  note: the workload spent its op budget (--max-ops) at t={report['duration_s']} s, "
                     f"before the chaos ended at {report['chaos_s']} s")
    lines += [f"  {text}" for text in report["failing_keys"]]
    lines += [f"  {text}" for text in report["lost"] + report["regressions"]]
    if report.get("dir"):
        lines.append(f"  saved: {report['dir']}")
    return "\n".join(lines)


def _save(outdir: Path, history: History, chaos: RecordingChaos, report: dict[str, Any],
          result: CheckResult) -> None:
    report["dir"] = str(outdir)
    save_jsonl(history.operations, outdir / "history.jsonl")
    (outdir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    summary = format_report(report).splitlines()
    throughput.write(outdir / "throughput.html", history.operations, chaos.events,
                     max(report["duration_s"], max((t for t, _ in chaos.events), default=0.0)),
                     f"chaos check {outdir.name}", summary)
    if not report["linearizable"]:
        write_html(result, outdir / "timeline.html",
                   title=f"{outdir.name}/history.jsonl")
