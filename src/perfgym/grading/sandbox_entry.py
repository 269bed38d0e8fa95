"""The grader's agent inside the sandbox: loads a submission, runs it on the grader's inputs.

This file is copied alone into a sandbox and run there, so it imports nothing from perfgym and
holds nothing secret: it sees only the inputs the grader gave it (never expected outputs or test
labels). The grader's clock is outside; this side only says `ready` when the heavy libraries are
imported and warm, waits for `go`, then loads the run's inputs, imports the submission and
runs it, writes the results, and says `done`. Work moved after `done` is worthless: the grader
reads the results at that moment (with the process frozen, where the machine has a freezer).
The grader links a run's inputs only after `awake`.
Protocol (one line each on two pipes): <- the job as JSON, -> ready, then per run
<- wake NONCE SECONDS, -> awake NONCE, <- go NONCE, -> done ID NONCE | error ID NONCE; finally
<- probes, -> probes | error probes (or the pipe closed: exit).
"""

import importlib
import json
import os
import sys
import time
import traceback

import numpy as np

_TRAINED_ROWS: dict = {}


def _say(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def _listen(stream) -> str:
    return stream.readline().strip()


def _settle_memory(megabytes: int = 256) -> None:
    """Make every run in this process allocate memory alike. By default glibc serves a large
    array from fresh mmap'd pages (page faults) until a free raises its threshold, so the first
    run in a process ran up to 0.4 s slower than the next ones (a 0.6 s pipeline). A fixed
    threshold, no trimming and a heap faulted in here make the first run like the rest."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 2**30)
    chunks = [np.ones(2 * 2**20) for _ in range(megabytes // 16)]  # 16 MB each
    del chunks


def _spin(seconds: float) -> None:
    """Keep the CPU this process was just moved to busy: a virtual CPU that sat idle runs the
    first fraction of a second of a run slower, which made each process's first run the
    slowest of its runs."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _warm(names: list) -> None:
    """Pay the libraries' one-time lazy costs (identical for baseline and candidate)."""
    _settle_memory()
    np.fft.fft2(np.ones((4, 4)))
    np.median(np.arange(5.0))
    if "torch" in names:
        import torch

        torch.manual_seed(0)
        layer = torch.nn.Linear(4, 3)
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        loss = torch.nn.CrossEntropyLoss()(
            torch.sigmoid(layer(torch.randn(2, 4))) * torch.tanh(torch.ones(1)),
            torch.tensor([0, 1]),
        )
        loss.backward()
        opt.step()
        torch.randperm(5, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)
    if "sklearn.ensemble" in names:
        from sklearn.ensemble import RandomForestClassifier

        x = np.arange(40.0).reshape(20, 2)
        RandomForestClassifier(n_estimators=2, random_state=0).fit(x, np.arange(20) % 2).predict(x)


def _install_training_counter(class_names: list) -> None:
    """Count the rows each named model class is trained on: rows of a training-mode forward
    call whose output a backward pass then goes through (a forward alone does not count)."""
    import torch

    def count(name: str, rows: int):
        def on_backward(grad):
            _TRAINED_ROWS[name] = _TRAINED_ROWS.get(name, 0) + rows

        return on_backward

    def hook(module, args, output):
        name = type(module).__name__
        if name in class_names and module.training and torch.is_grad_enabled() and args:
            first = args[0]
            rows = int(first.shape[0]) if getattr(first, "ndim", 0) else 1
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(count(name, rows))

    torch.nn.modules.module.register_module_forward_hook(hook)


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return repr(value)


def _export_model(model, arrays: dict) -> dict:
    """Turn a fitted model into plain arrays the grader can evaluate without unpickling."""
    meta = {"class": type(model).__name__}
    torch = sys.modules.get("torch")  # never import a library inside the timed region
    if torch is not None and isinstance(model, torch.nn.Module):
        meta["kind"] = "torch"
        for key, tensor in model.state_dict().items():
            arrays["w:" + key] = tensor.detach().cpu().numpy()
        return meta
    ensemble = sys.modules.get("sklearn.ensemble")
    if ensemble is not None and isinstance(model, ensemble.RandomForestClassifier):
        meta["kind"] = "forest"
        meta["params"] = {k: _jsonable(v) for k, v in model.get_params().items()}
        meta["n_trees"] = len(model.estimators_)
        arrays["classes"] = np.asarray(model.classes_)
        for i, est in enumerate(model.estimators_):
            t = est.tree_
            arrays[f"t{i}:left"] = t.children_left
            arrays[f"t{i}:right"] = t.children_right
            arrays[f"t{i}:feature"] = t.feature
            arrays[f"t{i}:threshold"] = t.threshold
            arrays[f"t{i}:value"] = t.value[:, 0, :]
        return meta
    meta["kind"] = "unknown"
    return meta


def _fresh_import(name: str):
    """Import the submission anew, so nothing from an earlier run in this process is reused."""
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
    return importlib.import_module(name)


def _trace(module, names: list, keep: list) -> tuple:
    """Wrap the module's components to see that the pipeline really calls them (not a copy
    that was never probed), keeping the first result of those in `keep`."""
    calls, first = {}, {}

    def wrap(name, fn):
        def traced(*args, **kwargs):
            out = fn(*args, **kwargs)
            calls[name] = calls.get(name, 0) + 1
            if name in keep and name not in first:
                first[name] = out
            return out

        return traced

    for name in names:
        fn = module.__dict__.get(name)
        if callable(fn) and not isinstance(fn, type):
            setattr(module, name, wrap(name, fn))
    return calls, first


def _as_arrays(prefix: str, value, arrays: dict) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for i, item in enumerate(items):
        item = item.detach().numpy() if hasattr(item, "detach") else item
        arrays[f"{prefix}.{i}"] = np.asarray(item)


def _run_pipeline(job: dict, run: dict, inputs: dict) -> None:
    _TRAINED_ROWS.clear()
    module = _fresh_import(job["module"])
    calls, first = _trace(module, job["trace"], job["trace_outputs"])
    result = getattr(module, job["entry"])(
        train_images=inputs["train_images"],
        train_labels=inputs["train_labels"],
        test_images=inputs["test_images"],
        seed=int(inputs["seed"]),
    )
    if not isinstance(result, dict) or "model" not in result or "predictions" not in result:
        raise TypeError(f"{job['entry']} must return a dict with 'model' and 'predictions'")
    arrays = {"predictions": np.asarray(result["predictions"]).astype(np.int64).reshape(-1)}
    for name, value in first.items():
        _as_arrays("trace:" + name, value, arrays)
    meta = {
        "model": _export_model(result["model"], arrays),
        "trained_rows": dict(_TRAINED_ROWS),
        "calls": calls,
    }
    _write(run["output"], arrays, meta)


def _write(path: str, arrays: dict, meta: dict) -> None:
    np.savez(path, **arrays)
    with open(path + ".json", "w") as f:
        json.dump(meta, f)


def _probe(module, call: dict, inputs: dict) -> list:
    """One equivalence probe: call a component on hidden inputs, return its outputs as arrays."""
    target = getattr(module, call["target"])
    if call["kind"] == "call":
        out = target(*[inputs[a] for a in call["args"]])
        outs = list(out) if isinstance(out, tuple) else [out]
        return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o) for o in outs]
    import torch

    if call["kind"] == "module_forward":
        model = target()
        prefix = call["state"]
        state = {
            k[len(prefix) :]: torch.from_numpy(v) for k, v in inputs.items() if k.startswith(prefix)
        }
        model.load_state_dict(state)
        x = torch.from_numpy(inputs[call["input"]])
        outs = []
        for training in (False, True):  # the model must be the same function while training
            model.train(training)
            with torch.no_grad():
                outs.append(model(x).numpy())
        return outs
    if call["kind"] == "module_backward":
        x = torch.from_numpy(inputs[call["input"]]).clone().requires_grad_(True)
        y = target()(x)
        y.backward(torch.from_numpy(inputs[call["grad"]]))
        return [y.detach().numpy(), x.grad.numpy()]
    raise ValueError(f"unknown probe kind {call['kind']}")


def _run_probes(job: dict, spec: dict) -> None:
    inputs = dict(np.load(spec["inputs"], allow_pickle=False))
    module = _fresh_import(job["module"])
    arrays, errors = {}, {}
    for call in spec["calls"]:
        try:
            for i, out in enumerate(_probe(module, call, inputs)):
                arrays[f"{call['id']}.{i}"] = out
        except BaseException as exc:  # the submission's failure is data for the grader
            errors[call["id"]] = f"{type(exc).__name__}: {exc}"[:2000]
    _write(spec["output"], arrays, {"errors": errors})


def main() -> None:
    go_fd, ctrl_fd = int(sys.argv[1]), int(sys.argv[2])
    for fd in (go_fd, ctrl_fd):  # no child of the submission inherits the grader's pipes
        os.set_inheritable(fd, False)
    go = os.fdopen(go_fd, "r")
    job = json.loads(go.readline())  # never on disk, so the submission cannot read it
    sys.path.insert(0, job["workspace"])
    for name in job["preload"]:
        importlib.import_module(name)
    if "torch" in job["preload"]:
        import torch

        torch.set_num_threads(job["threads"])
        torch.set_num_interop_threads(job["threads"])
    _warm(job["preload"])
    if job.get("count_forward"):
        _install_training_counter(job["count_forward"])
    _say(ctrl_fd, "ready")
    for run in job["runs"]:
        word, _, nonce = _listen(go).partition(" ")
        if word != "wake":
            os._exit(3)
        nonce, _, seconds = nonce.partition(" ")
        _spin(min(float(seconds or 0.25), 1.0))
        _say(ctrl_fd, f"awake {nonce}")
        word, _, nonce = _listen(go).partition(" ")
        if word != "go":
            os._exit(3)
        # this run's inputs appeared only after `awake` (an earlier run, or a thread it left,
        # cannot work ahead on them), and are loaded on the clock
        inputs = dict(np.load(run["inputs"], allow_pickle=False))
        # The nonce came before the submission was imported and lives only in this frame: a
        # submission cannot forge `done` for a run to stop the grader's clock early.
        try:
            _run_pipeline(job, run, inputs)
        except BaseException:
            with open(run["output"] + ".error", "w") as f:
                f.write(traceback.format_exc()[-4000:])
            _say(ctrl_fd, f"error {run['id']} {nonce}")
            continue
        _say(ctrl_fd, f"done {run['id']} {nonce}")
    # wait for the grader's last word (probes, or the pipe closed) before exiting: tearing down
    # a process costs CPU, which must not fall in a neighbour's timed run
    if _listen(go) == "probes" and job.get("probes"):  # asked for once no run is timed
        try:
            _run_probes(job, job["probes"])
            _say(ctrl_fd, "probes")
        except BaseException:
            with open(job["probes"]["output"] + ".error", "w") as f:
                f.write(traceback.format_exc()[-4000:])
            _say(ctrl_fd, "error probes")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
