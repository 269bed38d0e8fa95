"""EpisodeToolbox: the schemas the model reads, and `call` never raising on a bad call."""

from __future__ import annotations

import asyncio

import pytest

from perfgym.agent.tools import EpisodeToolbox
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


def test_sandboxed_tools_run_concurrently(toolbox):
    """Sandbox runs go to worker threads, so episodes sharing an event loop overlap."""

    async def both():
        args = {"code": "import time; time.sleep(1.5); print('slept')"}
        return await asyncio.gather(
            toolbox.call("run_python", args), toolbox.call("run_python", args)
        )

    loop_start = asyncio.new_event_loop()
    try:
        start = loop_start.time()
        results = loop_start.run_until_complete(both())
        elapsed = loop_start.time() - start
    finally:
        loop_start.close()
    assert all("slept" in r.content for r in results)
    assert elapsed < 2.8
