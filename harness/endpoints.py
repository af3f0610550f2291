"""Typed endpoints: what a client needs of an environment and of each component.

Every component returns a frozen dataclass derived from `Endpoints`; its
`as_json` is the shape `testbuild env --json` prints (users' scripts read
it), and its `summary` the lines `testbuild up` prints for it. Fields with
`metadata=INTERNAL` are addresses inside the environment's network, for other
components only: they are not printed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

# Field metadata: other components read the field, clients are not shown it.
_INTERNAL_KEY = "internal"
INTERNAL = {_INTERNAL_KEY: True}


def to_json(value: object) -> Any:
    """Dataclasses as objects (without internal fields), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_json(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if not field.metadata.get(_INTERNAL_KEY)
        }
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    return value


@dataclass(frozen=True)
class Endpoints:
    """The endpoints of one component."""

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = to_json(self)
        return shape

    def summary(self) -> list[str]:
        """Lines for the end of `testbuild up` (none: the component is not shown)."""
        return []


E = TypeVar("E", bound=Endpoints)


@dataclass(frozen=True)
class UserEndpoints:
    name: str
    uid: int
    password: str
    account: str
    ssh_private_key: str | None = None  # with cluster.sshAuth: static-key only

    def as_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = to_json(self)
        return {key: value for key, value in shape.items() if value is not None}


@dataclass(frozen=True)
class EnvironmentEndpoints:
    """Everything `testbuild env` shows: the environment's own, then each component's."""

    name: str
    state_dir: str
    users: tuple[UserEndpoints, ...]
    components: dict[str, Endpoints]  # by component name, in start order

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_dir": self.state_dir,
            "users": [user.as_json() for user in self.users],
            **{name: endpoints.as_json() for name, endpoints in self.components.items()},
        }

    def summary(self) -> list[str]:
        people = ", ".join(f"{user.name} ({user.password})" for user in self.users)
        lines = [f"users (password): {people}"]
        for endpoints in self.components.values():
            lines += endpoints.summary()
        return lines

    def of(self, kind: type[E]) -> E:
        """The endpoints of the component whose endpoints are of type `kind`."""
        for endpoints in self.components.values():
            if isinstance(endpoints, kind):
                return endpoints
        raise LookupError(f"no component of environment '{self.name}' has {kind.__name__}")
