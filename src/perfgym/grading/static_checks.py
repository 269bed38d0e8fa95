"""Checks on the submission's source, before any of it runs.

Required components must be real top-level definitions, with the baseline's parameters, that the
pipeline actually reaches (not strings, comments or unused decoys). Constructs with no honest use
in these tasks are rejected: monkeypatching modules (clocks, libraries, the grader's hooks),
exec/eval, frame and gc introspection, threads, processes and thread-count changes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

FORBIDDEN_MODULES = {
    "threading": "threads",
    "_thread": "threads",
    "multiprocessing": "processes",
    "concurrent": "threads or processes",
    "subprocess": "processes",
    "joblib": "worker pools",
    "torch.multiprocessing": "processes",
    "torch.distributed": "processes",
    "socket": "network",
    "urllib": "network",
    "http": "network",
    "ctypes": "native calls",
    "cffi": "native calls",
    "signal": "signal handlers",
    "inspect": "frame introspection",
    "gc": "gc introspection",
    "importlib": "dynamic imports",
    "builtins": "patching builtins",
    "pickle": "serialized state",
    "marshal": "serialized state",
    "shelve": "on-disk caches",
    "sqlite3": "on-disk caches",
    "mmap": "shared memory",
    "resource": "resource limits",
    "asyncio": "event loops",
    "pty": "terminals",
    "atexit": "exit hooks",
    "sys.monitoring": "tracing",
    "threadpoolctl": "thread counts",
    "operator": "hidden attribute access",
    "pydoc": "dynamic imports",
    "runpy": "dynamic imports",
    "code": "dynamic code",
    "codeop": "dynamic code",
    "sklearn.utils.parallel": "worker pools",
}
FORBIDDEN_NAMES = {
    "__builtins__": "patching builtins",
    "__import__": "dynamic imports",
    "__loader__": "module internals",
    "__spec__": "module internals",
}
FORBIDDEN_CALLS = {
    "exec": "exec",
    "eval": "eval",
    "compile": "compile",
    "__import__": "dynamic imports",
    "globals": "namespace introspection",
    "vars": "namespace introspection",
    "locals": "namespace introspection",
    "setattr": "monkeypatching",
    "delattr": "monkeypatching",
    "breakpoint": "debugger",
}
FORBIDDEN_ATTRS = {
    "_getframe": "frame introspection",
    "f_back": "frame introspection",
    "f_globals": "frame introspection",
    "f_locals": "frame introspection",
    "gi_frame": "frame introspection",
    "tb_frame": "frame introspection",
    "__globals__": "function internals",
    "__code__": "function internals",
    "__closure__": "function internals",
    "__builtins__": "patching builtins",
    "__subclasses__": "class introspection",
    "__class__": "class introspection",
    "__base__": "class introspection",
    "__bases__": "class introspection",
    "__mro__": "class introspection",
    "__dict__": "namespace introspection",
    "__getattribute__": "hidden attribute access",
    "ctypeslib": "native calls",
    "settrace": "tracing",
    "setprofile": "tracing",
    "fork": "processes",
    "forkpty": "processes",
    "system": "processes",
    "popen": "processes",
    "posix_spawn": "processes",
    "kill": "signals",
    "killpg": "signals",
    "sched_setaffinity": "CPU affinity",
    "set_num_threads": "thread counts",
    "set_num_interop_threads": "thread counts",
    "register_module_forward_hook": "the grader's hooks",
    "register_module_forward_pre_hook": "the grader's hooks",
    "_exit": "killing the harness",
}
_OS_EXEC_PREFIXES = ("exec", "spawn", "posix_spawn")
_OS_FD_CALLS = {
    "write",
    "read",
    "fdopen",
    "dup",
    "dup2",
    "pipe",
    "openpty",
    "sendfile",
    "close",
    "closerange",
    "set_inheritable",
}
_HARNESS_PATHS = ("/proc", "/io", "/dev/fd")
_INDIRECT_BUILTINS = {"getattr", "setattr", "delattr", "hasattr"}


@dataclass(frozen=True)
class StaticResult:
    name: str
    passed: bool
    detail: str


def _top_level_defs(tree: ast.Module) -> dict[str, ast.AST]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def _param_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        a = node.args
        return [p.arg for p in a.posonlyargs + a.args]
    return []


def _referenced_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
    return names


def _reachable(defs: dict[str, ast.AST], entry: str) -> set[str]:
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        todo.extend(_referenced_names(defs[name]) & defs.keys())
    return seen


def check_required(tree: ast.Module, baseline: ast.Module, required: tuple[str, ...], entry: str):
    """Required names: real definitions, the baseline's parameters, reached from the entry."""
    defs, base_defs = _top_level_defs(tree), _top_level_defs(baseline)
    problems = []
    for name in required:
        node = defs.get(name)
        if node is None:
            problems.append(f"{name} is not defined at the top level (def or class)")
            continue
        kind_ok = isinstance(node, ast.ClassDef) == isinstance(base_defs.get(name), ast.ClassDef)
        if not kind_ok:
            want_kind = "function" if isinstance(node, ast.ClassDef) else "class"
            problems.append(f"{name} must be a {want_kind}, as in the baseline")
            continue
        want = _param_names(base_defs[name])
        have = _param_names(node)
        if have[: len(want)] != want:
            problems.append(
                f"{name} takes ({', '.join(have)}) but the baseline's takes ({', '.join(want)})"
            )
    reached = _reachable(defs, entry)
    for name in required:
        if name in defs and name != entry and name not in reached:
            problems.append(f"{name} is defined but {entry} never uses it (a decoy)")
    if problems:
        return StaticResult("static.required_names", False, "; ".join(problems))
    return StaticResult(
        "static.required_names", True, f"{', '.join(required)} defined and used by {entry}"
    )


class _ForbiddenFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.found: list[str] = []
        self._called: set[int] = set()

    def _flag(self, node: ast.AST, what: str, why: str) -> None:
        self.found.append(f"line {getattr(node, 'lineno', '?')}: {what} ({why})")

    def _module_rule(self, dotted: str) -> str | None:
        for mod, why in FORBIDDEN_MODULES.items():
            if dotted == mod or dotted.startswith(mod + "."):
                return why
        return None

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if why := self._module_rule(alias.name):
                self._flag(node, f"import {alias.name}", why)
            self.aliases[(alias.asname or alias.name).split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if why := self._module_rule(module):
            self._flag(node, f"from {module} import ...", why)
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if (why := self._module_rule(full)) or (why := self._attr_rule(module, alias.name)):
                self._flag(node, f"from {module} import {alias.name}", why)
            self.aliases[alias.asname or alias.name] = full

    def _attr_rule(self, base: str, attr: str) -> str | None:
        if attr in FORBIDDEN_ATTRS:
            return FORBIDDEN_ATTRS[attr]
        if base == "sys" and attr == "modules":
            return "reading sys.modules"
        if base == "os" and attr in _OS_FD_CALLS:
            return "raw file descriptors (the grader's pipes)"
        if base == "os" and attr.startswith(_OS_EXEC_PREFIXES):
            return "processes"
        if attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__")) and base:
            return "private library internals"
        return None

    def _dotted(self, node: ast.AST) -> str | None:
        """`np.random.seed` -> `numpy.random.seed` when its root is an imported module."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node.value)
        if node.attr in FORBIDDEN_ATTRS:
            self._flag(node, f".{node.attr}", FORBIDDEN_ATTRS[node.attr])
        elif dotted is not None and (why := self._attr_rule(dotted, node.attr)):
            self._flag(node, f"{dotted}.{node.attr}", why)
        self.generic_visit(node)

    def _check_target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Attribute) and (dotted := self._dotted(target)):
            self._flag(target, f"assignment to {dotted}", "monkeypatching a module")
        elif isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._check_target(t)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._check_target(t)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._check_target(t)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self._flag(node, node.id, FORBIDDEN_NAMES[node.id])
        elif node.id in _INDIRECT_BUILTINS and id(node) not in self._called:
            self._flag(node, f"{node.id} passed around as a value", "hidden attribute access")

    def visit_Constant(self, node: ast.Constant) -> None:
        if node.value == "n_jobs":
            self._flag(node, "'n_jobs' as a string", "more CPUs than the budget")
        elif isinstance(node.value, str) and node.value.startswith(_HARNESS_PATHS):
            self._flag(node, repr(node.value[:40]), "reading the grader's process or files")

    def visit_Call(self, node: ast.Call) -> None:
        self._called.add(id(node.func))
        for kw in node.keywords:
            if kw.arg == "num_workers" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value in (0, None)
            ):
                self._flag(node, "num_workers other than 0", "worker processes")
        if isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                self._flag(node, f"{node.func.id}()", FORBIDDEN_CALLS[node.func.id])
            if node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
                name = node.args[1]
                if not isinstance(name, ast.Constant) or not isinstance(name.value, str):
                    self._flag(node, "getattr() with a computed name", "hidden attribute access")
                else:  # getattr(os, "fork") is os.fork
                    base = self._dotted(node.args[0]) or ""
                    if why := self._attr_rule(base, name.value):
                        self._flag(node, f"getattr(..., {name.value!r})", why)
        for kw in node.keywords:
            if kw.arg == "n_jobs" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value in (1, None)
            ):
                self._flag(node, "n_jobs other than 1", "more CPUs than the budget")
        self.generic_visit(node)


def check_forbidden(tree: ast.Module) -> StaticResult:
    finder = _ForbiddenFinder()
    finder.visit(tree)
    if finder.found:
        shown = "; ".join(finder.found[:8])
        more = f" (+{len(finder.found) - 8} more)" if len(finder.found) > 8 else ""
        return StaticResult("static.forbidden", False, shown + more)
    return StaticResult(
        "static.forbidden",
        True,
        "no monkeypatching, exec/eval, introspection, threads or processes",
    )


def run_static_checks(
    source: str, baseline_source: str, required: tuple[str, ...], entry: str
) -> list[StaticResult]:
    """All static checks in order; a syntax error stops the rest."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [StaticResult("static.syntax", False, f"line {exc.lineno}: {exc.msg}")]
    results = [StaticResult("static.syntax", True, "parses")]
    results.append(check_required(tree, ast.parse(baseline_source), required, entry))
    results.append(check_forbidden(tree))
    return results
