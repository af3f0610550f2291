"""Storage, under /storage: external transfers through the S3 staging area
(`external.py`, moved along by `transfers.py`) and internal transfers as
Slurm jobs on the transfer partition (`internal.py`)."""

from __future__ import annotations

from flask import Blueprint

from firecrest_testbuild.stack.context import StackContext
from firecrest_testbuild.stack.jobs import fail_interrupted_tasks
from firecrest_testbuild.stack.services import Service
from firecrest_testbuild.stack.services.storage import external, internal
from firecrest_testbuild.stack.staging import Staging
from firecrest_testbuild.stack.transfers import Transfers


def start_transfers(context: StackContext) -> None:
    """Open the staging area and move transfers along, those a predecessor left too."""
    assert context.config.storage is not None, "storage is served only when configured"
    context.staging = Staging(context.config.storage)
    context.transfers = Transfers(context.config, context.store, context.staging, context.shell)
    context.transfers.start()


blueprint = Blueprint("storage", __name__)
blueprint.register_blueprint(external.blueprint)
blueprint.register_blueprint(internal.blueprint)
SERVICE = Service(
    name="storage",
    blueprint=blueprint,
    endpoints=[*external.ENDPOINTS, *internal.ENDPOINTS],
    on_start=(fail_interrupted_tasks, start_transfers),
)
