"""`python -m node.simulation`: replay one seed, or soak through many.

    python -m node.simulation --seed 42 --nodes 5 --ticks 2000   # replay one run
    python -m node.simulation --seeds 100000 --jobs 2            # soak, progress bar
    python -m node.simulation --membership --seeds 5000          # soak with membership changes
    python -m node.simulation --joint --seeds 2000               # ... and multi-voter (joint) ones
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

from .run import SimulationFailure, run_seed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m node.simulation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, help="run exactly this seed and print its result")
    p.add_argument("--seeds", type=int, default=1000, help="soak: how many seeds (default 1000)")
    p.add_argument("--start", type=int, default=0, help="soak: first seed (default 0)")
    p.add_argument("--nodes", type=str, default="3,5",
                   help="cluster sizes, comma separated; a soak alternates them (default 3,5)")
    p.add_argument("--ticks", type=int, default=2000, help="ticks of faults per run (default 2000)")
    p.add_argument("--jobs", type=int, default=0, help="soak: worker processes (default: all cores)")
    p.add_argument("--membership", action="store_true",
                   help="add random membership changes (add learner, promote, remove)")
    p.add_argument("--joint", action="store_true",
                   help="membership changes including multi-voter ones through joint consensus "
                        "(replace 1-2 voters, grow 3->5, shrink 5->3, move to new ids)")
    p.add_argument("--reuse-ids", action="store_true",
                   help="with --membership: re-add removed ids as fresh nodes (known unsafe)")
    return p


def _sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"--nodes wants sizes >= 1, got {text!r}")
    return sizes


def _run(seed: int, nodes: int, ticks: int, membership: bool,
         reuse_ids: bool, joint: bool = False) -> tuple[int, str | None]:
    try:
        run_seed(seed, nodes, ticks, membership, reuse_ids, joint)
    except SimulationFailure as exc:
        return seed, str(exc)
    return seed, None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        sizes = _sizes(args.nodes)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        try:
            result = run_seed(args.seed, sizes[0], args.ticks, args.membership, args.reuse_ids, args.joint)
        except SimulationFailure as exc:
            print(exc, file=sys.stderr)
            return 1
        print(result)
        return 0
    return _soak(args, sizes)


def _soak(args: argparse.Namespace, sizes: list[int]) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    import os
    jobs = args.jobs or os.cpu_count() or 1
    failures: list[str] = []
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns) as bar, ProcessPoolExecutor(jobs) as pool:
        task = bar.add_task("simulating", total=args.seeds)
        seeds = range(args.start, args.start + args.seeds)
        futures = [pool.submit(_run, s, sizes[s % len(sizes)], args.ticks, args.membership,
                               args.reuse_ids, args.joint) for s in seeds]
        for fut in as_completed(futures):
            seed, error = fut.result()
            if error:
                failures.append(error)
                bar.console.print(f"[red]FAIL[/red] {error.splitlines()[0]}\n  "
                                  f"{error.splitlines()[1]}")
            bar.update(task, advance=1, description=f"simulating ({len(failures)} failed)")
    print(f"{args.seeds - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
