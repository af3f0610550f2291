"""The microservices, one module each, and how the stack finds and starts them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint

from firecrest_testbuild.stack.api import Endpoint
from firecrest_testbuild.stack.config import StackConfig
from firecrest_testbuild.stack.context import StackContext

StartHook = Callable[[StackContext], None]


@dataclass
class Service:
    name: str
    blueprint: Blueprint | None  # None: works inside other services, serves no path
    endpoints: list[Endpoint] = field(default_factory=list)
    on_start: tuple[StartHook, ...] = ()  # run, in order, when a process serving it starts


def all_services() -> dict[str, Service]:
    from firecrest_testbuild.stack.services import (
        certificator,
        compute,
        reservations,
        status,
        storage,
        tasks,
        utilities,
    )

    found = [
        certificator.SERVICE,
        compute.SERVICE,
        reservations.SERVICE,
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


def start_services(services: list[Service], context: StackContext) -> None:
    """Run the start hooks of `services`; a hook that several of them name runs once."""
    for hook in dict.fromkeys(hook for service in services for hook in service.on_start):
        hook(context)
