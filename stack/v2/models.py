"""Request bodies of the v2 API description, as pydantic models.

Keys are camelCase; upstream's older clients send `path` where the
description says `sourcePath`, so both are read. Unknown keys are ignored,
as upstream's models do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

Compression = Literal["none", "bzip2", "gzip", "xz"]


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # No command line can carry a NUL: refuse it here, not on the system.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not hold a NUL character")
        return value


SourcePath = Annotated[
    str, Field(min_length=1, validation_alias=AliasChoices("sourcePath", "path", "source_path"))
]
NonEmpty = Annotated[str, Field(min_length=1)]


class PathBody(Body):
    source_path: SourcePath


class Chmod(PathBody):
    mode: NonEmpty


class Chown(PathBody):
    owner: str = ""
    group: str = ""


class Mkdir(PathBody):
    parent: bool = False


class Symlink(PathBody):
    link_path: NonEmpty


class Compress(PathBody):
    target_path: NonEmpty
    match_pattern: str | None = None
    dereference: bool = False
    compression: Compression = "gzip"


class Extract(PathBody):
    target_path: NonEmpty
    compression: Compression = "gzip"


class Attach(Body):
    command: NonEmpty
