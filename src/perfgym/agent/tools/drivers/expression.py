"""Runs inside the sandbox (passed with `python -c`): evaluates the agent's snippet.

Like a REPL cell: every statement runs, and when the last one is an expression its value's
repr is printed (unless it is None). The snippet is argv[1]. Tracebacks show the snippet's
own lines, not this driver's.
"""

import ast
import linecache
import sys
import traceback

NAME = "<expression>"


def _evaluate(source: str) -> None:
    tree = ast.parse(source, NAME, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(tree, NAME, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, NAME, "eval"), namespace)
        if value is not None:
            print(repr(value))


def main() -> None:
    source = sys.argv[1]
    sys.argv = [NAME]
    linecache.cache[NAME] = (len(source), None, source.splitlines(True), NAME)
    try:
        _evaluate(source)
    except SystemExit:
        raise
    except SyntaxError as exc:
        traceback.print_exception(type(exc), exc, None)
        sys.exit(1)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != NAME:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)


main()
