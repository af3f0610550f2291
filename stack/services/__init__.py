"""The microservices, one module each, and how the stack finds them."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint

from firecrest_testbuild.stack.api import Endpoint
from firecrest_testbuild.stack.config import StackConfig


@dataclass
class Service:
    name: str
    blueprint: Blueprint | None  # None: works inside other services, serves no path
    endpoints: list[Endpoint] = field(default_factory=list)


def all_services() -> dict[str, Service]:
    from firecrest_testbuild.stack.services import (
        certificator,
        compute,
        status,
        storage,
        tasks,
        utilities,
    )

    found = [
        certificator.SERVICE,
        compute.SERVICE,
        status.SERVICE,
        storage.SERVICE,
        tasks.SERVICE,
        utilities.SERVICE,
    ]
    return {service.name: service for service in found}


def enabled_services(config: StackConfig) -> list[Service]:
    """The services this process serves; storage needs its staging area configured."""
    known = all_services()
    return [
        known[name]
        for name in config.services
        if name in known and (name != "storage" or config.storage is not None)
    ]
