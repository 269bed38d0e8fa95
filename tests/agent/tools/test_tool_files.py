"""read_file, write_file and list_files."""

from __future__ import annotations

import os

from perfgym.agent.tools.files import MAX_READ_CHARS, MAX_READ_LINES, MAX_WRITE_BYTES


def test_read_file_numbers_the_lines(call, spec):
    result = call("read_file", path="baseline.py")
    assert not result.is_error
    lines = spec.baseline_path.read_text().splitlines()
    assert result.content.startswith(f"baseline.py: lines 1-{len(lines)} of {len(lines)}\n")
    assert f"     1\t{lines[0]}" in result.content
    assert f"{len(lines):6}\t{lines[-1]}" in result.content
    assert "[cut" not in result.content


def test_read_file_offset_and_limit(call):
    result = call("read_file", path="baseline.py", offset=10, limit=3)
    body = result.content.splitlines()
    assert body[0].startswith("baseline.py: lines 10-12 of ")
    assert [line.split("\t")[0].strip() for line in body[1:4]] == ["10", "11", "12"]
    assert "offset=13 to read more" in body[-1]


def test_read_file_cuts_long_files_and_says_how_to_go_on(call, workspace):
    (workspace / "long.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    result = call("read_file", path="long.txt")
    assert f"lines 1-{MAX_READ_LINES} of 5000" in result.content
    assert f"offset={MAX_READ_LINES + 1} to read more" in result.content
    (workspace / "wide.txt").write_text(("y" * 900 + "\n") * 400)
    result = call("read_file", path="wide.txt")
    assert len(result.content) <= MAX_READ_CHARS + 500
    assert "[cut: showing lines 1-" in result.content and "to read more" in result.content


def test_read_file_cuts_one_huge_line(call, workspace):
    (workspace / "one.txt").write_text("z" * 300_000)
    result = call("read_file", path="one.txt")
    assert not result.is_error and len(result.content) < 10_000
    assert "line cut: 300000 characters" in result.content


def test_read_file_errors(call, workspace):
    (workspace / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (workspace / "latin.txt").write_bytes("café".encode("latin-1"))
    (workspace / "empty.py").write_text("")
    (workspace / "sub").mkdir()
    assert "binary file" in call("read_file", path="blob.bin").content
    assert "not UTF-8" in call("read_file", path="latin.txt").content
    assert "does not exist" in call("read_file", path="nope.py").content
    assert "is a directory" in call("read_file", path="sub").content
    assert "past the end" in call("read_file", path="baseline.py", offset=10_000).content
    for path in ("blob.bin", "latin.txt", "nope.py", "sub", "../x"):
        assert call("read_file", path=path).is_error
    empty = call("read_file", path="empty.py")
    assert not empty.is_error and "empty" in empty.content


def test_write_file_creates_and_overwrites(call, workspace):
    result = call("write_file", path="pkg/mod.py", content="x = 1\ny = 2\n")
    assert not result.is_error
    assert result.content == "Created pkg/mod.py: 12 bytes, 2 lines."
    assert (workspace / "pkg" / "mod.py").read_text() == "x = 1\ny = 2\n"
    result = call("write_file", path="pkg/mod.py", content="é")
    assert result.content.startswith("Overwrote pkg/mod.py: 2 bytes")
    assert (workspace / "pkg" / "mod.py").read_text() == "é"


def test_write_file_errors(call, workspace, tmp_path):
    too_big = call("write_file", path="big.py", content="a" * (MAX_WRITE_BYTES + 1))
    assert too_big.is_error and "at most" in too_big.content
    assert not (workspace / "big.py").exists()
    outside = call("write_file", path="../escape.py", content="x")
    assert outside.is_error and not (tmp_path / "escape.py").exists()
    absolute = call("write_file", path=str(tmp_path / "abs.py"), content="x")
    assert absolute.is_error and not (tmp_path / "abs.py").exists()
    (workspace / "sub").mkdir()
    assert "is a directory" in call("write_file", path="sub", content="x").content
    assert "is a directory" in call("write_file", path=".", content="x").content
    surrogate = call("write_file", path="s.py", content="x = '\ud800'")
    assert surrogate.is_error and "lone surrogate" in surrogate.content
    under_file = call("write_file", path="baseline.py/x.py", content="x")
    assert under_file.is_error


def test_list_files(call, workspace):
    (workspace / "sub").mkdir()
    (workspace / "sub" / "a.py").write_text("abc")
    os.symlink("/etc", workspace / "etc_link")
    result = call("list_files")
    assert not result.is_error
    lines = result.content.splitlines()
    assert lines[0] == "./ (workspace):"
    assert f"baseline.py ({(workspace / 'baseline.py').stat().st_size} bytes)" in lines
    assert "sub/" in lines and "sub/a.py (3 bytes)" in lines
    assert "etc_link -> /etc (symlink)" in lines
    assert "sub/a.py (3 bytes)" in call("list_files", path="sub").content.splitlines()
    assert call("list_files", path="etc_link").is_error
    assert call("list_files", path="..").is_error
    assert call("list_files", path="missing").is_error
    assert "is a file" in call("list_files", path="baseline.py").content


def test_list_files_is_capped(call, workspace):
    (workspace / "many").mkdir()
    for i in range(700):
        (workspace / "many" / f"f{i:04}.txt").write_text("")
    result = call("list_files")
    assert "[cut:" in result.content and "more entries" in result.content
    assert len(result.content.splitlines()) < 510
