"""The `perfgym` command: tasks, grade, baseline, benchmark; run, demo and report (runner).

Exit codes: 0 pass (or success), 1 a graded failure, 2 a usage or infrastructure error. Errors a
user can cause end in one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from perfgym.errors import UsageError

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _progress(enabled: bool):
    console = _stderr()
    return (
        (lambda msg: console.print(f"[dim]perfgym:[/dim] {msg}")) if enabled else (lambda _: None)
    )


def task_arg(task_id: str):
    """The task named on the command line, or a one-sentence usage error."""
    from perfgym.tasks import UnknownTaskError, get_task

    try:
        return get_task(task_id)
    except UnknownTaskError as exc:
        raise UsageError(str(exc)) from None


def size_arg(spec, size: str) -> str:
    """A size the task has, or a one-sentence usage error."""
    if size not in spec.sizes:
        raise UsageError(f"task {spec.id} has no size {size!r}; sizes: {', '.join(spec.sizes)}")
    return size


def cmd_tasks(args: argparse.Namespace) -> int:
    from perfgym.tasks import TASKS
    from perfgym.tasks.prompt import render_prompt

    rows = [
        {
            "id": t.id,
            "title": t.title,
            "baseline_path": str(t.baseline_path),
            "reference_path": str(t.reference_path),
            "target_speedup": t.sizes["full"].target_speedup,
            "sizes": {
                name: {
                    "n_samples": s.n_samples,
                    "target_speedup": s.target_speedup,
                    "reference_speedup": s.reference_speedup,
                }
                for name, s in t.sizes.items()
            },
            "accuracy_tolerance": t.accuracy_tolerance,
            "cpu_budget": t.cpu_budget,
            "prompt": render_prompt(t),
        }
        for t in TASKS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    console = Console(highlight=False, soft_wrap=True)
    for r in rows:
        console.print(f"[bold]{r['id']:<17}[/bold] {r['title']}  (target {r['target_speedup']:g}x)")
    return EXIT_OK


def _print_report(report, console: Console) -> None:
    colour = {"pass": "green", "fail": "red"}.get(report.verdict, "yellow")
    console.print(f"[bold {colour}]{report.verdict.upper()}[/]  {report.task} ({report.size})")
    for c in report.checks:
        mark = {True: "[green]ok  [/]", False: "[red]FAIL[/]", None: "[dim]skip[/]"}[c.passed]
        console.print(f"  {mark} {c.name}: {c.detail}")
    t = report.timing
    if "speedup" in t:
        lo, hi = t["speedup_interval_95"]
        console.print(
            f"  baseline {t['baseline']['lower_quartile']:.2f} s, "
            f"candidate {t['candidate']['lower_quartile']:.3f} s (lower quartiles of the runs);"
            f" speedup {t['speedup']:.2f}x [{lo:.2f}, {hi:.2f}]"
            + (" (each run paired with a reference run)" if t.get("paired") else "")
        )
    console.print(f"  reward {report.reward:.3f}   sandbox {report.environment.get('sandbox')}")


def cmd_grade(args: argparse.Namespace) -> int:
    from perfgym.grading import grade

    spec = task_arg(args.task)
    size = size_arg(spec, args.size)
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    report = grade(
        spec, path, size, refresh_baseline=args.refresh_baseline, progress=_progress(not args.quiet)
    )
    if args.out:
        report.write(Path(args.out))
    if args.json:
        print(report.to_json())
    else:
        _print_report(report, Console(highlight=False, soft_wrap=True))
    if report.verdict == "error":
        _stderr().print(f"perfgym: grading could not complete: {'; '.join(report.reasons)}")
        return EXIT_ERROR
    return EXIT_OK if report.verdict == "pass" else EXIT_FAIL


def cmd_baseline(args: argparse.Namespace) -> int:
    from perfgym.grading.baseline_cache import BaselineError, get_baseline

    spec = task_arg(args.task)
    size = size_arg(spec, args.size)
    try:
        record, _, cached = get_baseline(spec, size, args.refresh, _progress(not args.quiet))
    except BaselineError as exc:
        raise UsageError(str(exc)) from None
    data = {**record.__dict__, "median": record.median, "cached": cached}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        samples = ", ".join(f"{k} {v:.2f} s" for k, v in record.samples.items())
        acc = ", ".join(f"{k} {v:.3f}" for k, v in record.accuracy.items())
        Console(highlight=False, soft_wrap=True).print(
            f"{spec.id} ({size}) baseline: median {record.median:.2f} s ({samples}); "
            f"test accuracy {acc} (chance 0.10); {'cached' if cached else 'measured now'}"
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfgym",
        description="An RL environment for ML performance engineering: make a slow training "
        "pipeline fast without changing what it computes, graded by a grader that can't be fooled.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tasks", help="list the tasks")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("grade", help="grade one optimized pipeline file")
    p.add_argument("--task", required=True, help="task id (see `perfgym tasks`)")
    p.add_argument("file", help="the optimized pipeline (a single Python file)")
    p.add_argument("--size", default="full", help="full (default) or small")
    p.add_argument("--json", action="store_true", help="print only the GradeReport JSON")
    p.add_argument("--out", metavar="DIR", help="also write DIR/grade.json")
    p.add_argument("--refresh-baseline", action="store_true", help="re-measure the baseline")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("baseline", help="measure the baseline or show its cached measurement")
    p.add_argument("--task", required=True, help="task id")
    p.add_argument("--size", default="full", help="full (default) or small")
    p.add_argument("--refresh", action="store_true", help="measure again even if cached")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_baseline)
    p = sub.add_parser(
        "benchmark",
        help="measure the grader: overhead and speedup stability (see --help)",
        add_help=False,
    )
    p.set_defaults(func=None)

    from perfgym.runner.commands import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["benchmark"]:
        from perfgym.benchmark import main as benchmark

        return benchmark(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        _stderr().print(f"perfgym: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _stderr().print("perfgym: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
