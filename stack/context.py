"""What every part of the stack shares while it serves: the configuration,
the token verifier, the shell to the systems, the task store and runner, and
the storage service's staging area and transfers when it is served."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from firecrest_testbuild.stack.auth import TokenVerifier
from firecrest_testbuild.stack.commands import Shell
from firecrest_testbuild.stack.config import StackConfig
from firecrest_testbuild.stack.probecache import ProbeCache
from firecrest_testbuild.stack.staging import Staging
from firecrest_testbuild.stack.taskstore import TaskRunner, TaskStore
from firecrest_testbuild.stack.transfers import Transfers

EXTENSION = "stack"  # the context's key in the Flask application's extensions


@dataclass
class StackContext:
    config: StackConfig
    verifier: TokenVerifier
    shell: Shell
    store: TaskStore
    runner: TaskRunner
    # System probes (SSH banners) shared by concurrent status requests.
    system_probes: ProbeCache[dict[str, str]] = field(default_factory=lambda: ProbeCache(0))
    staging: Staging | None = None  # set by the storage service when it starts
    transfers: Transfers | None = None  # likewise


def stack_context() -> StackContext:
    """The context of the application serving the current request."""
    context: StackContext = current_app.extensions[EXTENSION]
    return context
