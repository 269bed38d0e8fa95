"""Runs inside the sandbox (passed with `python -c`): profiles the agent's script.

argv: profiler, output directory, number of hot spots, seconds to profile, py-spy binary,
script, script arguments. The script runs as `python script args` would run it; the full
profile and a text summary of its hot spots (summary.txt) go to the output directory. All the
reading and formatting of profiles happens here, inside the sandbox, never in the harness.
When the time runs out the profile of the run so far is still written.
"""

import io
import json
import os
import runpy
import signal
import subprocess
import sys
import sysconfig
import traceback


class TimeLimit(BaseException):
    """The profiling time ran out (a BaseException so ordinary `except Exception` misses it)."""


def _on_alarm(signum, frame):
    raise TimeLimit


def _run_script(script: str, args: list, seconds: float) -> tuple:
    """Run the script like `python script args`; its exit code and whether time ran out."""
    path = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(path)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        runpy.run_path(path, run_name="__main__")
        return 0, False
    except TimeLimit:
        return 0, True
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0, False
        print(code, file=sys.stderr)
        return 1, False
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != path:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        return 1, False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout.flush()
        sys.stderr.flush()


def _cprofile(out: str, top: int, seconds: float, script: str, args: list) -> tuple:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        code, timed_out = _run_script(script, args, seconds)
    finally:
        prof.disable()
    prof.dump_stats(os.path.join(out, "profile.prof"))
    full = io.StringIO()
    pstats.Stats(prof, stream=full).sort_stats("cumulative").print_stats()
    _write(out, "profile.txt", full.getvalue())
    summary = io.StringIO()
    stats = pstats.Stats(prof, stream=summary)
    # strip_dirs() keeps only base names, which merges every __init__.py into one row; it
    # maps names through pstats.func_strip_path, so give it names that stay unique instead.
    pstats.func_strip_path = _short_key
    stats.strip_dirs()
    for key in list(stats.stats):  # this driver's and runpy's frames are noise to the agent
        if key[0] in ("<string>", "<frozen runpy>", "runpy.py"):
            del stats.stats[key]
    summary.write(f"cProfile hot spots: top {top} functions by cumulative time")
    summary.write(" (time in the function and everything it calls)\n")
    stats.sort_stats("cumulative").print_stats(top)
    summary.write(f"cProfile hot spots: top {top} functions by own time (tottime)\n")
    stats.sort_stats("tottime").print_stats(top)
    return code, timed_out, summary.getvalue()


def _pyinstrument(out: str, top: int, seconds: float, script: str, args: list) -> tuple:
    from pyinstrument import Profiler
    from pyinstrument.renderers import SpeedscopeRenderer

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        code, timed_out = _run_script(script, args, seconds)
    finally:
        profiler.stop()
    tree = _without_banner(profiler.output_text(unicode=False, color=False))
    _write(out, "profile.txt", tree)
    _write(out, "profile.html", profiler.output_html())
    _write(out, "profile.speedscope.json", profiler.output(SpeedscopeRenderer()))
    flat = _without_banner(profiler.output_text(unicode=False, color=False, flat=True))
    flat_lines = flat.strip("\n").splitlines()
    shown = "\n".join(flat_lines[: top + 2])
    summary = (
        f"pyinstrument hot spots: functions by own time (top {top})\n{shown}\n\n"
        f"pyinstrument call tree (library internals folded)\n{tree}"
    )
    return code, timed_out, summary


def _without_banner(text: str) -> str:
    """pyinstrument's text without its ASCII-art header (its duration line is kept)."""
    lines = text.splitlines()
    duration = ""
    for i, line in enumerate(lines[:12]):
        if "Duration:" in line:
            duration = "Duration:" + line.split("Duration:", 1)[1]
        if line.startswith("Profile at"):
            lines = lines[i + 1 :]
            break
    return "\n".join([" ".join(duration.split()), *lines] if duration else lines)


def _py_spy(out: str, top: int, seconds: float, py_spy: str, script: str, args: list) -> tuple:
    path = os.path.join(out, "profile.speedscope.json")
    argv = [py_spy, "record", "--rate", "200", "--format", "speedscope", "-o", path]
    argv += ["--", sys.executable, script, *args]
    proc = subprocess.Popen(argv)
    timed_out = False
    try:
        code = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    if not os.path.exists(path):
        return code, timed_out, "py-spy wrote no profile (see its messages above)."
    with open(path) as f:
        data = json.load(f)
    return code, timed_out, _summarize_speedscope(data, top)


def _summarize_speedscope(data: dict, top: int) -> str:
    frames = data["shared"]["frames"]
    total_by_fn, self_by_line, all_weight = {}, {}, 0.0
    for prof in data["profiles"]:
        for stack, weight in zip(prof.get("samples", []), prof.get("weights", []), strict=False):
            all_weight += weight
            if not stack:
                continue
            leaf = frames[stack[-1]]
            key = f"{leaf['name']} ({_short(leaf['file'])}:{leaf.get('line')})"
            self_by_line[key] = self_by_line.get(key, 0.0) + weight
            for fn in {(frames[i]["name"], frames[i]["file"]) for i in stack}:
                total_by_fn[fn] = total_by_fn.get(fn, 0.0) + weight
    if not all_weight:
        return "py-spy collected no samples (the script ended too quickly?)."
    lines = [f"py-spy: {all_weight:.2f} s sampled", ""]
    lines.append(f"top {top} functions by total time (time in the function and its callees):")
    ranked = sorted(total_by_fn.items(), key=lambda kv: -kv[1])[:top]
    for (name, file), w in ranked:
        lines.append(f"{w:8.2f} s {100 * w / all_weight:5.1f}%  {name} ({_short(file)})")
    lines += ["", f"top {top} lines by own time (where the samples landed):"]
    for key, w in sorted(self_by_line.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{w:8.2f} s {100 * w / all_weight:5.1f}%  {key}")
    return "\n".join(lines) + "\n"


def _short(file: str) -> str:
    """A file name short enough to read but still unique: relative to site-packages, the
    standard library or the current directory (the workspace)."""
    parts = file.split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker) :])
    for root in (sysconfig.get_paths()["stdlib"], os.getcwd()):
        if file.startswith(root.rstrip("/") + "/"):
            return file[len(root.rstrip("/")) + 1 :]
    return file


def _short_key(func: tuple) -> tuple:
    return (_short(func[0]), *func[1:])


def _write(out: str, name: str, text: str) -> None:
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write(text)


def main() -> None:
    profiler, out, top, seconds, py_spy, script, *args = sys.argv[1:]
    top, seconds = int(top), float(seconds)
    if profiler == "cprofile":
        code, timed_out, summary = _cprofile(out, top, seconds, script, args)
    elif profiler == "pyinstrument":
        code, timed_out, summary = _pyinstrument(out, top, seconds, script, args)
    else:
        code, timed_out, summary = _py_spy(out, top, seconds, py_spy, script, args)
    if timed_out:
        summary = (
            f"NOTE: the script was stopped after {seconds:g} s (the time limit); this profile "
            "covers the run up to then.\n\n" + summary
        )
    _write(out, "summary.txt", summary)
    sys.stdout.flush()
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


main()
