"""Client errors as FirecREST v1 reports them: a 4xx, a JSON body and, where
the API names one, a header telling the client what went wrong."""

from __future__ import annotations

from typing import Any

MACHINE_DOES_NOT_EXIST = "X-Machine-Does-Not-Exist"
MACHINE_NOT_AVAILABLE = "X-Machine-Not-Available"
PERMISSION_DENIED = "X-Permission-Denied"
INVALID_PATH = "X-Invalid-Path"
NOT_FOUND = "X-Not-Found"
EXISTS = "X-Exists"
TIMEOUT = "X-Timeout"
SIZE_LIMIT = "X-Size-Limit"
A_DIRECTORY = "X-A-Directory"
NOT_A_DIRECTORY = "X-Not-A-Directory"
INVALID_MODE = "X-Invalid-Mode"
INVALID_OWNER = "X-Invalid-Owner"
INVALID_GROUP = "X-Invalid-Group"
SBATCH_ERROR = "X-sbatch-error"
ERROR = "X-Error"  # anything else the system said

PERMISSION_DENIED_TEXT = "User does not have permissions to access machine or path"


class ApiError(Exception):
    """A response other than success; raised anywhere below a route.

    Without an explicit `body` the route answers FirecREST v1's error shape:
    {"description": <what the endpoint failed to do>, "error": <why>}.
    """

    def __init__(
        self,
        status: int,
        error: str,
        header: str | None = None,
        body: dict[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail  # what the system said, when it said something
        self.headers = {header: _header_safe(error)} if header else {}
        self.body = body


def bad_request(error: str, header: str | None = None) -> ApiError:
    return ApiError(400, error, header)


class Unauthorized(ApiError):
    """401 with the bodies FirecREST v1's gateway answers with."""

    def __init__(self, body: dict[str, str]) -> None:
        super().__init__(401, next(iter(body.values())), body=body)


def _header_safe(text: str) -> str:
    """One line of printable ASCII: header values cannot carry more."""
    flat = " ".join(text.split())
    return "".join(char if " " <= char <= "~" else "?" for char in flat)[:500]
