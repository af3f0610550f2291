"""Reading file metadata: `ls -l --quoting-style=c` output into file entries
(FirecREST v1's keys; v2 renames them) and `stat -c STAT_FORMAT` into os.stat fields."""

from __future__ import annotations

import re
from typing import Any

LS_FLAGS = ("-l", "--quoting-style=c", "--time-style=+%Y-%m-%dT%H:%M:%S")

ENTRY = re.compile(
    r"^(?P<type>\S)(?P<permissions>\S{9})\S*\s+\d+\s+(?P<user>\S+)\s+(?P<group>\S+)\s+"
    r"(?P<size>\d+|\d+,\s*\d+)\s+(?P<modified>\S+)\s+(?P<names>\".*)$"
)
ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}


def parse_listing(text: str, target: str, recursive: bool) -> list[dict[str, Any]]:
    """Entries of an `ls -l` run on `target`; names relative to it when recursive."""
    entries = []
    prefix = ""
    for line in text.splitlines():
        if recursive and line.startswith('"') and line.endswith(":"):
            section, _ = unquote_c(line[:-1])
            prefix = _relative(section, target)
            continue
        match = ENTRY.match(line)
        if match is None:
            continue  # "total N", blank separators
        name, rest = unquote_c(match["names"])
        link_target = ""
        if rest.startswith(" -> "):
            link_target, _ = unquote_c(rest[4:])
        entries.append(
            {
                "name": f"{prefix}{name}",
                "type": match["type"],
                "link_target": link_target,
                "user": match["user"],
                "group": match["group"],
                "permissions": match["permissions"],
                "last_modified": match["modified"],
                "size": match["size"].replace(" ", ""),
            }
        )
    return entries


def _relative(section: str, target: str) -> str:
    base = target.rstrip("/")
    if section in (base, target):
        return ""
    if section.startswith(base + "/"):
        return section[len(base) + 1 :] + "/"
    return section.rstrip("/") + "/"


def unquote_c(text: str) -> tuple[str, str]:
    """Decode one C-quoted string at the start of `text`; return it and what follows."""
    if not text.startswith('"'):
        raise ValueError(f"not a C-quoted string: {text!r}")
    out = bytearray()
    index = 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return out.decode("utf-8", errors="replace"), text[index + 1 :]
        if char != "\\":
            out += char.encode()
            index += 1
            continue
        escaped = text[index + 1 : index + 2]
        octal = re.match(r"[0-7]{3}", text[index + 1 : index + 4])
        if octal:
            out.append(int(octal.group(), 8))
            index += 4
        elif escaped in ESCAPES:
            out.append(ESCAPES[escaped])
            index += 2
        else:
            out += escaped.encode()
            index += 2
    raise ValueError(f"unterminated C-quoted string: {text!r}")


# os.stat_result's fields, as both API generations name them; the mode in hex.
STAT_FORMAT = "%f %i %d %h %u %g %s %X %Y %Z"
STAT_FIELDS = ("mode", "ino", "dev", "nlink", "uid", "gid", "size", "atime", "mtime", "ctime")


def parse_stat(text: str) -> dict[str, int]:
    """`stat -c STAT_FORMAT` output as numbers."""
    values = text.split()
    if len(values) != len(STAT_FIELDS):
        raise ValueError(f"not stat -c {STAT_FORMAT!r} output: {text!r}")
    numbers = [int(values[0], 16), *(int(value) for value in values[1:])]
    return dict(zip(STAT_FIELDS, numbers, strict=True))


def file_model(entry: dict[str, Any]) -> dict[str, Any]:
    """A `parse_listing` entry as FirecREST v2's File (camelCase, no link target: null)."""
    return {
        "name": entry["name"],
        "type": entry["type"],
        "linkTarget": entry["link_target"] or None,
        "user": entry["user"],
        "group": entry["group"],
        "permissions": entry["permissions"],
        "lastModified": entry["last_modified"],
        "size": entry["size"],
    }
