"""sshd ForceCommand of the login node: runs one allow-listed command line.

Two ways of sending commands, chosen by `--accept` (the environment's
cluster.sshCommands, rendered into sshd's ForceCommand line):

- certificate-as-command, upstream FirecREST v1's protocol: the client logs
  in with a short-lived certificate signed by the testbuild CA and sends the
  certificate text itself as the SSH command; the command to run is the
  certificate's force-command;
- plain: the client sends the command line itself (FirecREST v2, which keeps
  one connection per user open), logged in with a static key or with a
  certificate without force-command;
- both (the default): either of the two.

Whatever is accepted, a plain command sent over a certificate that has a
force-command must equal it. Every command a line can run must start with an
allowed program: each part of a pipeline or list, after VAR=value prefixes,
redirections and `timeout [options] N`; the line inside `bash -c "LINE"`
(checked as any line); the command of `find -exec`. Command and process
substitution are refused, and so is anything the check cannot read.
Refusals exit with 118, as upstream's wrapper does. Each decision is logged.

The command runs in exactly the environment sshd started the wrapper with,
as under a shell wrapper (upstream's is bash): python3 itself changes its
environment at start in the C/POSIX locale (PEP 538 sets LC_CTYPE=C.UTF-8,
which would reach every command and change its messages), so the wrapper
hands on the environment the kernel kept from its exec, /proc/self/environ.
The one exception is SHLVL, which sshd sets (SetEnv SHLVL=1) only so that
the user's login shell, bash, starting this wrapper reads no ~/.bashrc: the
command gets SHLVL as if sshd had set none.

Every SSH command starts this code, so it is kept cheap to start (issue 16;
docs/benchmarks.md has the figures): sshd runs the stub
testbuild-command-wrapper beside this file with python3 -I -S (no user site,
no PYTHON* variables, no site module), which imports this module from the
bytecode compiled at image build (a script is compiled at every start). It
imports nothing that the interpreter has not loaded at start: no re or shlex
(the line is split by split_words(), which splits as shlex did), no os
(posix, which os wraps, is always loaded), no datetime; base64 and binascii
only for a certificate.
"""

import posix
import sys
import time

# mypy takes any name TYPE_CHECKING as true; at run time, collections.abc (which
# imports collections) would cost a millisecond of every start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

REFUSED = 118
ALLOWED_FILE = "/etc/testbuild-allowed-commands"
LOG_FILE = "/var/log/testbuild/commands.log"
PROC_ENVIRON = "/proc/self/environ"
ACCEPT_MODES = ("certificate-as-command", "plain", "both")
CERT_SUFFIX = "-cert-v01@openssh.com"
CONTROL_CHARS = frozenset("();|&\n")
TIMEOUT_OPTIONS_WITH_VALUE = {"-s", "-k", "--signal", "--kill-after"}
REDIRECTIONS = {">", ">>", "<", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|", "<>"}
PUNCTUATION = frozenset("();<>|&")
BLANKS = " \t\r"  # what separates words; a newline separates commands
QUOTES = "'\""
FIND_EXEC = {"-exec", "-execdir", "-ok", "-okdir"}
MAX_DEPTH = 4  # bash -c "bash -c '...'" nesting
# Variables a VAR=value prefix may not set: each makes an allowed program run
# other code (another binary, a library, a shell's startup file).
UNSAFE_VARIABLES = {
    "PATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "IFS", "PS4", "CDPATH",
    "GLOBIGNORE", "BASH_XTRACEFD", "GCONV_PATH", "HOSTALIASES", "LOCPATH", "NLSPATH",
    "TMPDIR", "HOME", "SHELL", "EDITOR", "VISUAL", "PAGER", "TAR_OPTIONS", "RSYNC_RSH",
    "RSYNC_CONNECT_PROG",
}  # fmt: skip
UNSAFE_PREFIXES = (
    "LD_", "BASH_FUNC_", "PYTHON", "PERL", "RUBY", "NODE_", "GIT_", "MALLOC_", "SSH_",
)  # fmt: skip


class Refused(Exception):
    """The command may not run; the message says why."""


def certificate_blob(text: str) -> str | None:
    """The base64 body of an OpenSSH certificate line, or None: the second
    word when the first is TYPE-cert-v01@openssh.com."""
    words = text.split(maxsplit=2)
    if len(words) > 1 and len(words[0]) > len(CERT_SUFFIX) and words[0].endswith(CERT_SUFFIX):
        return words[1]
    return None


def _ssh_string(data: bytes, offset: int) -> tuple[bytes, int]:
    length = int.from_bytes(data[offset : offset + 4], "big")
    end = offset + 4 + length
    if length < 0 or end > len(data):
        raise ValueError("truncated")
    return data[offset + 4 : end], end


# Fields before the critical options, per certificate type (PROTOCOL.certkeys):
# "s" a string, "8"/"4" an integer of that many bytes.
_CERT_FIELDS = {
    b"ssh-ed25519-cert-v01@openssh.com": "ss",
    b"ssh-rsa-cert-v01@openssh.com": "sss",
    b"ssh-dss-cert-v01@openssh.com": "sssss",
    b"ecdsa-sha2-nistp256-cert-v01@openssh.com": "sss",
    b"ecdsa-sha2-nistp384-cert-v01@openssh.com": "sss",
    b"ecdsa-sha2-nistp521-cert-v01@openssh.com": "sss",
}


def force_command(certificate: str) -> str | None:
    """The force-command critical option of a certificate line.

    Read from the certificate's wire format (PROTOCOL.certkeys): sshd has
    verified the login certificate, and one sent as command is only used when
    it is that same certificate.
    """
    import binascii  # base64.b64decode(validate=True) is this call, but base64 imports re

    blob = certificate_blob(certificate)
    try:
        data = binascii.a2b_base64((blob or "").encode("ascii"), strict_mode=True)
        kind, offset = _ssh_string(data, 0)
        fields = _CERT_FIELDS.get(kind)
        if blob is None or fields is None:
            raise ValueError("not a certificate")
        for _ in fields:  # nonce and the public key's parts
            _, offset = _ssh_string(data, offset)
        offset += 8 + 4  # serial, type
        _, offset = _ssh_string(data, offset)  # key id
        _, offset = _ssh_string(data, offset)  # principals
        offset += 8 + 8  # valid after, valid before
        options, _ = _ssh_string(data, offset)
        position = 0
        while position < len(options):
            name, position = _ssh_string(options, position)
            value, position = _ssh_string(options, position)
            if name == b"force-command":
                command, _ = _ssh_string(value, 0)
                return command.decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise Refused("the certificate sent as command cannot be read") from error
    return None


def login_certificate(auth_info: str) -> str | None:
    """The certificate used to log in, from sshd's ExposeAuthInfo file."""
    for line in auth_info.splitlines():
        method, _, rest = line.partition(" ")
        if method == "publickey" and certificate_blob(rest):
            return rest.strip()
    return None


def resolve_command(original: str, login_cert: str | None, accept: str = "both") -> str:
    """The command line to run, given what the client sent and how it logged in.

    `accept` is the environment's cluster.sshCommands: certificate-as-command,
    plain or both.
    """
    sent_blob = certificate_blob(original)
    if sent_blob is not None:
        if accept == "plain":
            raise Refused("certificates sent as command are not accepted here (sshCommands: plain)")
        if login_cert is not None and certificate_blob(login_cert) != sent_blob:
            raise Refused("the certificate sent as command is not the one used to log in")
        command = force_command(original)
        if not command:
            raise Refused("the certificate sent as command has no force-command")
        return command
    if login_cert is not None:
        forced = force_command(login_cert)
        if forced:
            if original.strip() and original.strip() != forced.strip():
                raise Refused("the command differs from the certificate's force-command")
            return forced
    if not original.strip():
        raise Refused("no command given: interactive logins are not offered")
    if accept == "certificate-as-command":
        raise Refused(
            "plain commands are not accepted here (sshCommands: certificate-as-command):"
            " send a certificate whose force-command is the command"
        )
    return original


def scan(command: str) -> None:
    """Refuse what bash would expand into running more commands.

    Walks the line as bash quotes it: nothing is special inside '...'; inside
    "..." and unquoted, `...`, $(...) (and $((...))) run code, and so may
    ${...} beyond a plain ${NAME} (a substring offset is arithmetic, and
    arithmetic runs the command substitutions in a variable's value);
    unquoted, <(...) and >(...) run a command too.
    """
    quote = ""  # "", "'", '"' or "$'" (ANSI-C)
    index = 0
    while index < len(command):
        char = command[index]
        if quote in ("'", "$'"):
            if quote == "$'" and char == "\\":
                index += 2
                continue
            if char == "'":
                quote = ""
        elif char == "\\":
            index += 2
            continue
        elif char == "`":
            raise Refused("command substitution (`) is not allowed")
        elif command.startswith("$(", index):
            raise Refused("command substitution ($() is not allowed")
        elif command.startswith("${", index) and not _simple_parameter(command, index):
            raise Refused("parameter expansions other than ${NAME} are not allowed")
        elif quote == '"':
            if char == '"':
                quote = ""
        elif command.startswith(("<(", ">("), index):
            raise Refused(f"process substitution ({command[index : index + 2]}) is not allowed")
        elif command.startswith("$'", index):
            quote = "$'"
            index += 2
            continue
        elif char in "'\"":
            quote = char
        index += 1
    if quote:
        raise Refused("the command cannot be parsed: No closing quotation")


def _simple_parameter(command: str, index: int) -> bool:
    """Whether the ${ at index starts a plain ${NAME}."""
    end = command.find("}", index + 2)
    return end != -1 and is_name(command[index + 2 : end])


def is_name(text: str) -> bool:
    """Whether text is a shell variable's name: [A-Za-z_][A-Za-z0-9_]*."""
    return text.isascii() and text.isidentifier()


def effective_words(words: list[str]) -> list[str]:
    """The words of the program a simple command runs: timeout [OPTIONS] N PROGRAM ...
    counts as PROGRAM ..."""
    while words and words[0] == "timeout":
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            option = rest.pop(0)
            if option in TIMEOUT_OPTIONS_WITH_VALUE:
                rest = rest[1:]
        words = rest[1:]
    return words


def effective_program(words: list[str]) -> str:
    """The program a simple command runs: timeout [OPTIONS] N PROGRAM counts as PROGRAM."""
    effective = effective_words(words)
    return effective[0] if effective else ""


def check_allowed(command: str, allowed: set[str], depth: int = 0) -> None:
    """Raise Refused unless every command the line can run starts with an allowed program."""
    if depth > MAX_DEPTH:
        raise Refused("bash -c is nested too deeply")
    scan(command)
    try:
        commands = simple_commands(command)
    except ValueError as error:
        raise Refused(f"the command cannot be parsed: {error}") from error
    if not any(commands):
        raise Refused("no program in the command")
    for words in commands:
        _check_simple(words, allowed, depth)


def _check_simple(words: list[str], allowed: set[str], depth: int) -> None:
    if not words:
        raise Refused("a command without a program (only assignments) is not allowed")
    effective = effective_words(words)
    program = effective[0] if effective else ""
    if program == "bash" and "bash" not in allowed:
        if len(effective) != 3 or effective[1] != "-c":
            raise Refused("'bash' is not an allowed command (bash -c LINE is, LINE being checked)")
        check_allowed(effective[2], allowed, depth + 1)
        return
    if program not in allowed:
        raise Refused(f"'{program or words[0]}' is not an allowed command")
    if program == "find":
        _check_find(effective, allowed, depth)


def _check_find(words: list[str], allowed: set[str], depth: int) -> None:
    """find -exec/-execdir/-ok/-okdir PROGRAM ... ; runs PROGRAM: it must be allowed.

    The `;` ending it is a separate command to the line's parser, so the
    words after -exec reach here until the end of the simple command.
    """
    for index, word in enumerate(words):
        if word in FIND_EXEC:
            executed = words[index + 1 :]
            while executed and executed[-1] in ("{}", "+"):  # the names find appends
                executed = executed[:-1]
            _check_simple(executed, allowed, depth)


def simple_commands(command: str) -> list[list[str]]:
    """The words of each simple command, without assignments and redirections.

    Conservative where it differs from bash: `#` starts no comment, and a
    quoted operator (';') separates commands too, so every word bash could
    run as a program is checked. Operators the check does not know are
    refused. An empty list is a command made of assignments alone.
    """
    commands: list[list[str]] = [[]]
    assignments = [False]
    skip_next = False
    for token in _split_newlines(split_words(command)):
        name, equals, _ = token.partition("=")
        if skip_next:
            skip_next = False
        elif token and set(token) <= CONTROL_CHARS:  # ; && || | & |& ;; ( ) newline
            commands.append([])
            assignments.append(False)
        elif token in REDIRECTIONS:
            skip_next = True
        elif token and set(token) <= PUNCTUATION:
            raise ValueError(f"unsupported operator {token!r}")
        elif not commands[-1] and equals and is_name(name):
            if name in UNSAFE_VARIABLES or name.startswith(UNSAFE_PREFIXES):
                raise ValueError(f"setting {name} is not allowed")
            assignments[-1] = True
        else:
            commands[-1].append(token)
    if skip_next:
        raise ValueError("a redirection without a target")
    pairs = zip(commands, assignments, strict=True)
    return [words for words, assigned in pairs if words or assigned]


def split_words(command: str) -> list[str]:
    """The line's words and operators, split exactly as the shlex module
    splits it with posix=True, punctuation_chars=True, whitespace_split=True,
    no commenters and space, tab and carriage return as whitespace (the
    wrapper's check was written on that lexer; shlex imports re, 5 ms of
    each start).

    A run of ();<>|& outside quotes is one operator token; whitespace ends a
    word; single quotes keep everything; double quotes keep everything but a
    backslash before a backslash or a double quote; outside quotes a backslash
    keeps the next character, a newline too. A newline is part of a word (the
    caller splits on it). A word with quotes counts even when empty.
    """
    words: list[str] = []
    word = ""
    state = " "  # " " between words, "a" in a word, "c" in an operator, or the open quote
    quoted = False
    index, end = 0, len(command)
    while index < end:
        char = command[index]
        index += 1
        if state in QUOTES:
            if char == state:
                state = "a"
            elif char == "\\" and state == '"':
                if index == end:
                    raise ValueError("No escaped character")
                word += command[index] if command[index] in '\\"' else char + command[index]
                index += 1
            else:
                word += char
            continue
        if state == "c" and char in PUNCTUATION:
            word += char
            continue
        if state != " " and (char in BLANKS or char in PUNCTUATION or state == "c"):
            words.append(word)
            word, state, quoted = "", " ", False
        if char in BLANKS:
            continue
        if char in PUNCTUATION:
            word, state = char, "c"
        elif char in QUOTES:
            state, quoted = char, True
        elif char == "\\":
            if index == end:
                raise ValueError("No escaped character")
            word, state = word + command[index], "a"
            index += 1
        else:
            word, state = word + char, "a"
    if state in QUOTES:
        raise ValueError("No closing quotation")
    if state != " " and (word or quoted):
        words.append(word)
    return words


def _split_newlines(words: list[str]) -> list[str]:
    """Tokens, with each unquoted newline (kept in words by the lexer) a separator.

    A newline inside quotes is kept too: that only makes the check stricter.
    """
    tokens: list[str] = []
    for token in words:
        parts = token.split("\n")
        for index, part in enumerate(parts):
            if index:
                tokens.append("\n")
            if part:
                tokens.append(part)
    return tokens


def parse_environ(block: bytes) -> dict[bytes, bytes]:
    """NAME=value entries of a NUL-separated environment block, as bytes."""
    variables: dict[bytes, bytes] = {}
    for entry in block.split(b"\0"):
        name, equals, value = entry.partition(b"=")
        if name and equals:
            variables.setdefault(name, value)  # the first wins, as for getenv()
    return variables


def login_environment(proc_environ: str = PROC_ENVIRON) -> "Mapping[bytes, bytes]":
    """The environment sshd started this process with, byte for byte.

    os.environ is not it: python3 coerces a C/POSIX locale to C.UTF-8 before
    any of this file runs (PEP 538) and adds LC_CTYPE=C.UTF-8 to it. The
    kernel keeps the block the process was exec'd with, which setenv() never
    rewrites. Without /proc, os.environ is the best there is.
    """
    try:
        with open(proc_environ, "rb") as handle:
            return parse_environ(handle.read())
    except OSError:
        import os

        return os.environb


def getenv(name: str) -> str | None:
    """os.environ.get(name) without importing os (1.5 ms of each start):
    os.environ decodes the posix module's bytes like this."""
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def read_allowed(path: str = ALLOWED_FILE) -> set[str]:
    with open(path, encoding="utf-8") as handle:
        return {line.split("#")[0].strip() for line in handle} - {""}


def log(outcome: str, command: str, how: str = "") -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())  # ISO 8601 in UTC
    user = getenv("USER")
    if user is None:
        user = str(posix.getuid())
    login = f" login={how}" if how else ""
    try:
        with open(LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} user={user}{login} {outcome} {command!r}\n")
    except OSError:
        pass  # logging must never stop a command


def accept_mode(arguments: list[str]) -> str:
    """The --accept=MODE argument (sshd's ForceCommand line), both by default."""
    mode = "both"
    for argument in arguments:
        if argument.startswith("--accept="):
            mode = argument.partition("=")[2]
    if mode not in ACCEPT_MODES:
        raise Refused(f"the login node's wrapper is misconfigured (--accept={mode})")
    return mode


def command_environment(environment: "Mapping[bytes, bytes]") -> dict[bytes, bytes]:
    """The environment to hand on: sshd's, with SHLVL as if sshd had set none.

    sshd sets SHLVL=1 (SetEnv) only so that the login shell starting this
    wrapper is not a top-level shell, which would read ~/.bashrc; that shell
    raised it to 2. The command's bash gets 1, as it would without the SetEnv.
    """
    handed = dict(environment)
    if handed.get(b"SHLVL") == b"2":
        handed[b"SHLVL"] = b"1"
    return handed


def main(arguments: list[str] | None = None) -> int:
    original = getenv("SSH_ORIGINAL_COMMAND") or ""
    auth_file = getenv("SSH_USER_AUTH")
    login_cert = None
    how = "key"
    try:
        if auth_file:
            with open(auth_file, encoding="utf-8") as handle:
                login_cert = login_certificate(handle.read())
        if login_cert is not None:
            how = "certificate"
        if certificate_blob(original) is not None:
            how = "certificate-as-command"
        accept = accept_mode(sys.argv[1:] if arguments is None else arguments)
        command = resolve_command(original, login_cert, accept)
        check_allowed(command, read_allowed(ALLOWED_FILE))
    except Refused as refusal:
        log(f"refused ({refusal})", original[:200], how)
        print(f"testbuild: command refused: {refusal}", file=sys.stderr)
        return REFUSED
    log("ok", command, how)
    posix.execve("/bin/bash", ["bash", "-c", command], command_environment(login_environment()))
    return 0  # not reached
