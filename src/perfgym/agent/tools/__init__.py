"""The tools of an episode: files, sandboxed Python, profilers, the public check, submit.

`EpisodeToolbox` implements `perfgym.agent.types.Toolbox`; `prepare_workspace` lays out a
fresh workspace; `read_submission` is how the harness takes the submitted file out of it.
"""

from perfgym.agent.tools.runner import SandboxSettings
from perfgym.agent.tools.submit import read_submission
from perfgym.agent.tools.toolbox import EpisodeToolbox
from perfgym.agent.tools.workspace import Workspace, prepare_workspace

__all__ = [
    "EpisodeToolbox",
    "SandboxSettings",
    "Workspace",
    "prepare_workspace",
    "read_submission",
]
