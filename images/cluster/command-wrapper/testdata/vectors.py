"""Test vectors for the Go command wrapper's tests, from Python itself: what
shlex, str and binascii decide, which the Python wrapper decided with and the
Go wrapper must decide the same. `go test` runs this (python3, 3.11 or newer,
standard library only) and reads the JSON it prints.

Strings that may hold bytes that are not UTF-8 travel as hex of their bytes;
Python reads them as the wrapper read the environment (surrogateescape).
"""

import binascii
import itertools
import json
import random
import re
import shlex
import sys

# Lines that once split differently, and each lexer error.
EDGE_LINES = [
    "a  b\tc\rd", "ls>out 2>&1|wc", "a;;b&&c||(d)", "echo '' \"\" x''", "a'b c'd \"e f\"g",
    "'a;b' \"c|d\" e\\;f", '"a\\"b\\\\c\\d\\$"', "'a\\'", "a\\ b \\\nc", "ls\nuname", "''|x",
    "$'a'", "a #b", "ls 'x", 'ls "x\\', "ls \\", "$'a\\'b'",
]  # fmt: skip


def shlex_words(line: str) -> list[str] | str:
    """The words of the shlex lexer the Python wrapper was written on, or its error."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"
    lexer.wordchars += "\n"
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as error:
        return str(error)


def split_lines() -> list[str]:
    """Every line of up to 4 characters that matter to the lexer, 3000 random
    longer lines, and the edge cases."""
    alphabet = ["a", " ", "\t", "'", '"', "\\", ";", "|", "&", ">", "\n", "$"]
    lines = [
        "".join(characters)
        for length in range(5)
        for characters in itertools.product(alphabet, repeat=length)
    ]
    generator = random.Random(1216)
    randoms = "ab =$#{}()'\"\\;|&<>\t\r\n"
    for _ in range(3000):
        lines.append("".join(generator.choices(randoms, k=generator.randint(1, 24))))
    return lines + EDGE_LINES


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def hexed(string: str, errors: str = "surrogateescape") -> str:
    return string.encode("utf-8", errors).hex()


def string_vector(raw: bytes) -> dict[str, object]:
    """What repr(), strip(), splitlines(), split() and stderr's
    backslashreplace make of the string the wrapper read from raw."""
    string = text(raw)
    return {
        "hex": raw.hex(),
        "repr": repr(string),
        "strip": hexed(string.strip()),
        "lines": [hexed(line) for line in string.splitlines()],
        "words": [hexed(word) for word in string.split(maxsplit=2)[:2]],
        "backslashreplace": hexed(string, "backslashreplace"),
    }


# Strings for repr(), strip(), splitlines() and split(): every byte alone,
# every code point below U+0250 and samples beyond (format, separator,
# private, unassigned, astral), bytes that are not UTF-8.
SAMPLES = [
    *(bytes([byte]) for byte in range(256)),
    *(chr(code).encode() for code in range(0x80, 0x250)),
    *(chr(code).encode() for code in (0x2028, 0x2029, 0x200B, 0x3000, 0xE000, 0xFEFF, 0x1F600)),
    *(chr(code).encode() for code in (0x0378, 0x10FFFF, 0xFFFD, 0x1680, 0x205F)),
    b"it's", b"say \"hi\"", b"both ' and \"", b"a\\b", b"caf\xe9", b"\xed\xa0\x80", b"\xc3",
    b"  a b\t c \x1c\x85 ", b"a\r\nb\rc\nd\x0be\x0cf\x1cg\x1dh\x1ei\xc2\x85j\xe2\x80\xa8k",
    b"x-cert-v01@openssh.com\xc2\xa0AAAA c", b"\xe3\x80\x80x-cert-v01@openssh.com AAAA",
]  # fmt: skip

# base64 strings for binascii.a2b_base64(strict_mode=True). Not padding after
# a whole quad ("AAAA="): Python 3.11 (bookworm's) took it, 3.13 (trixie's)
# refuses it, as Go does; the Go tests hold that case.
BASE64 = [
    "", "QQ==", "QUI=", "QUJD", "QR==", "QUJ=", "QQ=", "Q===", "====", "=QQ=", "QQ==QQ==",
    "QQ=a", "QUJDQQ==", "QUJD\nQQ==", "QUJD\r\n", "QUJD QQ==", "QUJ", "Q", "QUJDQ",
    "QUJD-_", "QUJD+/==", "QQ==\n", "é", "QUJDR",
]  # fmt: skip


# How the Python wrapper first told a certificate sent as command (Python's
# \s and \S are Unicode's).
OLD_CERT_PREFIX = re.compile(r"^\S+-cert-v01@openssh\.com\s+(\S+)")
CERT_LINES = [
    "ssh-ed25519-cert-v01@openssh.com AAAA comment",
    "  ssh-ed25519-cert-v01@openssh.com\t\tAAAA\n",
    "-cert-v01@openssh.com AAAA",  # no key type before the suffix
    "x-cert-v01@openssh.com",
    "x-cert-v01@openssh.com ",
    "x-cert-v01@openssh.comm AAAA",
    "x-cert-v01@opensshxcom AAAA",
    "ssh-ed25519 AAAA",
    "ls -l x-cert-v01@openssh.com",
    "",
]


def old_certificate_blob(line: str) -> str | None:
    match = OLD_CERT_PREFIX.match(line.strip())
    return match.group(1) if match else None


def base64_vector(encoded: str) -> str | None:
    try:
        return binascii.a2b_base64(encoded.encode("ascii"), strict_mode=True).hex()
    except (ValueError, binascii.Error):
        return None


def main() -> None:
    blanks = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    cert_lines = (
        CERT_LINES
        + [f"x-cert-v01@openssh.com{blank}AAAA{blank}c" for blank in blanks]
        + [f"{blank}x-cert-v01@openssh.com AAAA" for blank in blanks]
    )
    samples = [*SAMPLES, *(line.encode() for line in cert_lines)]
    vectors = {
        "split": [[line, shlex_words(line)] for line in split_lines()],
        "spaces": [ord(blank) for blank in blanks],
        "strings": [string_vector(sample) for sample in samples],
        "certificates": [[line, old_certificate_blob(line)] for line in cert_lines],
        "base64": [[encoded, base64_vector(encoded)] for encoded in BASE64],
    }
    json.dump(vectors, sys.stdout)


if __name__ == "__main__":
    main()
