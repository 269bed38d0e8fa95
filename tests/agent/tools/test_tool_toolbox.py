"""EpisodeToolbox: the schemas the model reads, and `call` never raising on a bad call."""

from __future__ import annotations

import asyncio
import time

import pytest

from perfgym.agent.tools import EpisodeToolbox, prepare_workspace
from perfgym.agent.types import ToolResult

ALL_TOOLS = [
    "read_file",
    "write_file",
    "list_files",
    "run_python",
    "python_expression",
    "profile",
    "check",
    "submit_answer",
]


def test_schemas_are_anthropic_tool_definitions(make_toolbox):
    schemas = make_toolbox(check=True).schemas()
    assert [s["name"] for s in schemas] == ALL_TOOLS
    for s in schemas:
        assert set(s) == {"name", "description", "input_schema"}
        assert len(s["description"]) > 40
        schema = s["input_schema"]
        assert schema["type"] == "object"
        assert set(schema["required"]) <= set(schema["properties"])
        for prop in schema["properties"].values():
            assert prop.get("type") and prop.get("description")
    required = {s["name"]: s["input_schema"]["required"] for s in schemas}
    assert required["read_file"] == ["path"]
    assert required["write_file"] == ["path", "content"]
    assert required["submit_answer"] == ["path"]
    assert required["python_expression"] == ["expression"]


def test_check_false_removes_the_check_tool(make_toolbox):
    names = [s["name"] for s in make_toolbox(check=False).schemas()]
    assert "check" not in names and names == [n for n in ALL_TOOLS if n != "check"]


def test_unknown_size_fails_at_construction(spec, workspace, artifacts):
    with pytest.raises(KeyError):
        EpisodeToolbox(spec, "huge", workspace, artifacts)


@pytest.mark.parametrize(
    ("name", "arguments", "phrase"),
    [
        ("rm_rf", {}, "Unknown tool 'rm_rf'"),
        (None, {}, "Unknown tool None"),
        ("read_file", {}, "needs the argument 'path'"),
        ("read_file", {"path": None}, "needs the argument 'path'"),
        ("read_file", "baseline.py", "object of named arguments"),
        ("read_file", {"path": 3}, "'path' must be a string, not an integer"),
        ("read_file", {"path": "baseline.py", "offset": "10"}, "must be an integer"),
        ("read_file", {"path": "baseline.py", "offset": True}, "must be an integer"),
        ("read_file", {"path": "baseline.py", "offset": 0}, "at least 1"),
        ("read_file", {"path": "baseline.py", "lines": 3}, "no argument 'lines'"),
        ("write_file", {"path": "a.py"}, "needs the argument 'content'"),
        ("run_python", {"path": "baseline.py", "args": "x"}, "'args' must be a list"),
        ("run_python", {"path": "baseline.py", "args": [1]}, "item 0 must be a string"),
        ("run_python", {"path": "baseline.py", "timeout_s": "5"}, "must be a number"),
        ("profile", {"path": "baseline.py", "profiler": "perf"}, "must be one of"),
        ("submit_answer", [], "object of named arguments"),
    ],
)
def test_bad_calls_are_error_results(call, name, arguments, phrase):
    result = call(name, arguments)
    assert isinstance(result, ToolResult)
    assert result.is_error and result.submission is None
    assert phrase in result.content


def test_integral_float_is_accepted_for_an_integer(call):
    result = call("read_file", path="baseline.py", offset=2.0, limit=1.0)
    assert not result.is_error and "lines 2-2" in result.content


def test_a_crashing_tool_gives_an_error_result(toolbox):
    async def boom(args):
        raise RuntimeError("kaboom")

    tool = toolbox.tools["list_files"]
    toolbox.tools["list_files"] = type(tool)(
        tool.name, tool.description, tool.properties, boom, tool.required, tool.defaults
    )
    result = asyncio.run(toolbox.call("list_files", {}))
    assert result.is_error and "kaboom" in result.content


def test_sandboxed_tools_of_different_episodes_run_concurrently(toolbox, spec, tmp_path):
    """Sandbox runs go to worker threads, so episodes sharing an event loop overlap."""
    other_ws = tmp_path / "other-workspace"
    prepare_workspace(spec, other_ws)
    other = EpisodeToolbox(spec, "small", other_ws, tmp_path / "other-artifacts", check=False)
    args = {"code": "import time; time.sleep(1.5); print('slept')"}

    async def both():
        start = time.monotonic()
        results = await asyncio.gather(
            toolbox.call("run_python", args), other.call("run_python", args)
        )
        return results, time.monotonic() - start

    results, elapsed = asyncio.run(both())
    assert all("slept" in r.content for r in results)
    assert elapsed < 2.8


def test_calls_of_one_episode_run_one_at_a_time(toolbox, workspace):
    """A file operation never overlaps sandboxed code running in the same workspace: each call
    waits for the one before, even when the caller overlaps them."""
    code = "import time; open('started', 'w').close(); time.sleep(1.0); open('done', 'w').close()"

    async def overlapped():
        run = asyncio.create_task(toolbox.call("run_python", {"code": code}))
        await asyncio.sleep(0.05)  # the run holds the toolbox from its first step
        listing = await toolbox.call("list_files", {"path": "."})
        return listing, await run

    listing, run = asyncio.run(overlapped())
    assert not run.is_error
    assert "done (0 bytes)" in listing.content  # listed after the run had finished


def test_a_cancelled_call_keeps_the_toolbox_until_its_sandbox_run_ends(toolbox):
    """The wall-clock limit cancels a call while its sandboxed code still runs in a worker
    thread; the next call must still wait for that code to end."""
    code = "import time; time.sleep(1.0); open('done', 'w').close()"

    async def cancel_then_list():
        run = asyncio.create_task(toolbox.call("run_python", {"code": code}))
        await asyncio.sleep(0.2)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return await toolbox.call("list_files", {"path": "."})

    assert "done (0 bytes)" in asyncio.run(cancel_then_list()).content
