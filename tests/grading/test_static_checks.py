"""Static checks: required names must be real and used; cheating constructs are rejected."""

from __future__ import annotations

import pytest

from perfgym.grading.static_checks import run_static_checks
from perfgym.tasks import get_task

BASE = """
def extract_features(images):
    return images

def train_model(features, labels, seed):
    return features

def run_pipeline(train_images, train_labels, test_images, seed):
    f = extract_features(train_images)
    return {"model": train_model(f, train_labels, seed), "predictions": f}
"""
REQUIRED = ("extract_features", "train_model", "run_pipeline")


def _results(source: str) -> dict[str, tuple[bool, str]]:
    return {
        r.name: (r.passed, r.detail)
        for r in run_static_checks(source, BASE, REQUIRED, "run_pipeline")
    }


def test_baseline_shape_passes():
    res = _results(BASE)
    assert all(ok for ok, _ in res.values()), res


def test_syntax_error_is_reported_with_its_line():
    res = _results("def run_pipeline(:\n")
    assert res == {"static.syntax": (False, res["static.syntax"][1])}
    assert "line 1" in res["static.syntax"][1]


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        (
            BASE.replace(
                "def extract_features(images):\n    return images", "extract_features = len"
            ),
            "not defined",
        ),
        (
            BASE.replace(
                "f = extract_features(train_images)", "f = train_images  # extract_features"
            ),
            "decoy",
        ),
        (
            BASE.replace("def train_model(features, labels, seed)", "def train_model(x, y, seed)"),
            "takes",
        ),
        (
            BASE.replace(
                "def extract_features(images):",
                "class extract_features:\n    pass\ndef _x(images):",
            ),
            "function",
        ),
    ],
    ids=["assigned-not-defined", "decoy", "renamed-params", "class-not-function"],
)
def test_required_names(source, needle):
    ok, detail = _results(source)["static.required_names"]
    assert not ok and needle in detail


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ("import time\ntime.perf_counter = lambda: 0.0", "monkeypatching"),
        ("import numpy as np\nnp.random.seed = print", "monkeypatching"),
        ("from torch import nn\nnn.Module.__call__ = None", "monkeypatching"),
        ("import threading", "threads"),
        ("import multiprocessing as mp", "processes"),
        ("from concurrent.futures import ThreadPoolExecutor", "threads"),
        ("import subprocess", "processes"),
        ("import os\nos.fork()", "processes"),
        ("from os import system", "processes"),
        ("import os\nos.execv('/bin/sh', [])", "processes"),
        ("import os\nos.sched_setaffinity(0, {0, 1})", "CPU affinity"),
        ("import torch\ntorch.set_num_threads(2)", "thread counts"),
        ("x = eval('1')", "eval"),
        ("exec('x = 1')", "exec"),
        ("m = __import__('threading')", "dynamic imports"),
        ("import sys\nf = sys._getframe(1)", "frame introspection"),
        ("import sys\nm = sys.modules", "sys.modules"),
        ("import inspect", "frame introspection"),
        ("import gc", "gc introspection"),
        ("x = getattr(__builtins__, 'ev' + 'al')", "hidden attribute access"),
        ("setattr(object, 'x', 1)", "monkeypatching"),
        ("from sklearn.ensemble import RandomForestClassifier as R\nR(n_jobs=-1)", "more CPUs"),
        ("import torch\ntorch.nn.modules.module._global_forward_hooks.clear()", "private"),
        ("import pickle", "serialized state"),
        ("import importlib", "dynamic imports"),
        # obfuscated and indirect routes to the same things
        ("import os\ngetattr(os, 'sched_setaffinity')(0, {0, 1})", "CPU affinity"),
        ("t = __builtins__['__import__']('threading')", "patching builtins"),
        ("f = RandomForestClassifier(**{'n_jobs': 2})", "more CPUs"),
        ("from threadpoolctl import threadpool_limits", "thread counts"),
        ("c = ().__class__.__base__.__subclasses__()", "class introspection"),
        ("import os\nos.write(6, b'done A')", "raw file descriptors"),
        ("import sys\nf = open('/proc/self/mem', 'rb')", "grader's process"),
        ("x = open('/io/out/A.npz', 'wb')", "grader's process"),
        ("from os import fdopen", "raw file descriptors"),
        ("import operator, os\noperator.attrgetter('sched_setaffinity')(os)(0, {0, 1})", "hidden"),
        ("import os\ng = getattr\ng(os, 'fork')()", "hidden attribute access"),
        ("import functools, os\nfunctools.reduce(getattr, ['path'], os)", "hidden attribute"),
        ("import os\nos.__getattribute__('fork')", "hidden attribute access"),
        ("import pydoc\npydoc.locate('os.fork')", "dynamic imports"),
        ("import runpy", "dynamic imports"),
        ("from torch.utils.data import DataLoader\nDataLoader([], num_workers=4)", "worker"),
        ("import numpy as np\nnp.ctypeslib.load_library('x', '.')", "native calls"),
        ("import os\nos.posix_spawnp('python3', ['python3'], {})", "processes"),
        ("import os, sys\nos.close(int(sys.argv[1]))", "raw file descriptors"),
        ("import os\nos.set_inheritable(5, True)", "raw file descriptors"),
    ],
)
def test_forbidden_constructs(snippet, why):
    ok, detail = _results(BASE + "\n" + snippet + "\n")["static.forbidden"]
    assert not ok
    assert why in detail


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\nt = time.perf_counter()",
        "import sys\nprint(sys.argv)",
        "import numpy as np\nx = np.random.default_rng(0)",
        "from sklearn.ensemble import RandomForestClassifier\nm = RandomForestClassifier(n_jobs=1)",
        "import os\np = os.path.join('a', 'b')",
        "x = getattr(object, 'mro')",
    ],
)
def test_honest_constructs_are_allowed(snippet):
    ok, detail = _results(BASE + "\n" + snippet + "\n")["static.forbidden"]
    assert ok, detail


@pytest.mark.parametrize("task_id", ["numpy-rf", "pytorch-nn", "complex-pipeline"])
def test_task_baseline_and_reference_pass_static_checks(task_id):
    spec = get_task(task_id)
    if not spec.reference_path.exists():
        pytest.fail(f"{spec.reference_path} is missing")
    base = spec.baseline_path.read_text()
    for source in (base, spec.reference_path.read_text()):
        results = run_static_checks(source, base, spec.required_names, spec.entry)
        assert all(r.passed for r in results), [r for r in results if not r.passed]
