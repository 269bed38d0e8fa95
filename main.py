"""The original hello-py entry point: `uv run main.py` plays `perfgym run` with its defaults
(any `perfgym run` option works here too)."""

import sys

from perfgym.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
