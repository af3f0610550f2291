"""SSH as FirecREST v2 does it: the user's own login, one pooled connection
per user and system, plain commands in sessions of that connection.

A connection is made on a user's first command with credentials from an
SSH CA service (a fresh key signed for the token's user), an SSH key
service (a key and certificate made for the user) or the user's static
key, kept while it is used, closed after `idle_timeout` seconds without a
command, and at most `max_connections` are open: a new user
closes the least recently used idle one, or waits for none and is refused.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from firecrest_testbuild.common import sshexec
from firecrest_testbuild.common.sshexec import LoginRefused, Output, SshTarget, Unreachable
from firecrest_testbuild.stack.config import System

log = logging.getLogger("stack.v2.ssh")

PRUNE_INTERVAL = 5.0  # seconds between looks for idle connections


class CredentialsUnavailable(Exception):
    """No credentials could be had for the user (the SSH CA refused, no static key)."""


class PoolFull(Exception):
    """Every pooled connection is busy and the pool is at its size limit."""


KeySource = Callable[[str, str], paramiko.PKey]  # (user, token) -> key to log in with


def sshca_keys(url: str, timeout: float) -> KeySource:
    """Keys signed by an SSH CA service (the DeiC protocol FirecREST v2 speaks):
    POST <url>/sign {"PublicKey", "OTT": the user's token} answers the certificate."""

    def key_for(user: str, token: str) -> paramiko.PKey:
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        try:
            answer = requests.post(
                f"{url.rstrip('/')}/sign",
                json={"PublicKey": public.decode(), "OTT": token},
                timeout=timeout,
            )
        except requests.RequestException as error:
            raise CredentialsUnavailable(f"the SSH CA cannot be reached: {error}") from error
        if answer.status_code != 200:
            raise CredentialsUnavailable(
                f"the SSH CA refused to sign for {user}: HTTP {answer.status_code}"
            )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
        try:
            pkey.load_certificate(answer.text.strip())
        except ValueError as error:
            raise CredentialsUnavailable(f"the SSH CA answered no certificate: {error}") from error
        return pkey

    return key_for


def sshservice_keys(url: str, timeout: float) -> KeySource:
    """Keys from an SSH key service (FirecREST v2's `SSHService` provider):
    POST <url>/api/v1/ssh-keys with the user's token answers 201 with a fresh
    private key and its certificate."""

    def key_for(user: str, token: str) -> paramiko.PKey:
        try:
            answer = requests.post(
                f"{url.rstrip('/')}/api/v1/ssh-keys",
                headers={"Authorization": f"Bearer {token}"},
                json={"duration": "1min", "username": user},
                timeout=timeout,
            )
        except requests.RequestException as error:
            raise CredentialsUnavailable(
                f"the SSH key service cannot be reached: {error}"
            ) from error
        if answer.status_code != 201:
            raise CredentialsUnavailable(
                f"the SSH key service refused a key for {user}: HTTP {answer.status_code}"
            )
        try:
            key = answer.json()["sshKey"]
            pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key["privateKey"]))
            pkey.load_certificate(key["publicKey"].strip())
        except (ValueError, KeyError, TypeError, paramiko.SSHException) as error:
            raise CredentialsUnavailable(f"the SSH key service answered no key: {error}") from error
        return pkey

    return key_for


def static_keys(folder: Path) -> KeySource:
    """Per-user static keys: <folder>/<user> holds the user's OpenSSH private key."""

    def key_for(user: str, token: str) -> paramiko.PKey:
        path = folder / user
        if "/" in user or not path.is_file():
            raise CredentialsUnavailable(f"no SSH key is configured for {user}")
        try:
            return paramiko.Ed25519Key.from_private_key_file(str(path))
        except (OSError, paramiko.SSHException) as error:
            raise CredentialsUnavailable(f"the SSH key of {user} cannot be read") from error

    return key_for


@dataclass
class _Connection:
    client: paramiko.SSHClient
    target: SshTarget
    last_used: float
    busy: int = 0  # commands running on it now

    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()


@dataclass
class ConnectionPool:
    keys: KeySource
    connect_timeout: float
    idle_timeout: float
    max_connections: int
    clock: Callable[[], float] = time.monotonic
    _connections: dict[tuple[str, str], _Connection] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # One login at a time per user and system: concurrent first requests share it.
    _logins: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)

    def run(
        self,
        user: str,
        token: str,
        system: System,
        command: str,
        stdin: bytes = b"",
        timeout: float = 60,
    ) -> Output:
        """`command` as `user` over the user's pooled connection (made when missing or dead)."""
        key = (system.name, user)
        connection = self._acquire(user, token, system)
        try:
            output = sshexec.run(connection.client, connection.target, command, stdin, timeout)
        except Unreachable:
            if connection.alive():
                # A session refused on a live connection (the server's
                # MaxSessions): the others running on it must not be cut.
                self._release(connection)
                raise
            # The connection died under us (sshd restarted, network): drop it
            # and retry once over a fresh login.
            self._drop(key, connection)
        except BaseException:
            self._release(connection)
            raise
        else:
            self._release(connection)
            return output
        retry = self._acquire(user, token, system)
        try:
            return sshexec.run(retry.client, retry.target, command, stdin, timeout)
        finally:
            self._release(retry)

    def size(self) -> int:
        with self._lock:
            return len(self._connections)

    def prune(self) -> None:
        """Close the connections idle for longer than `idle_timeout`."""
        now = self.clock()
        with self._lock:
            idle = [
                key
                for key, connection in self._connections.items()
                if connection.busy == 0 and now - connection.last_used > self.idle_timeout
            ]
            closing = [self._connections.pop(key) for key in idle]
        for connection in closing:
            connection.client.close()

    def start_pruning(self) -> None:
        """A daemon thread that prunes idle connections every few seconds."""

        def loop() -> None:
            while True:
                time.sleep(PRUNE_INTERVAL)
                self.prune()

        threading.Thread(target=loop, name="ssh-pool-pruner", daemon=True).start()

    def _acquire(self, user: str, token: str, system: System) -> _Connection:
        key = (system.name, user)
        with self._lock:
            login = self._logins.setdefault(key, threading.Lock())
        with login:
            with self._lock:
                connection = self._connections.get(key)
                if connection is not None and connection.alive():
                    connection.busy += 1
                    connection.last_used = self.clock()
                    return connection
                if connection is not None:
                    del self._connections[key]
                    connection.client.close()
                self._make_room()
            made = self._connect(user, token, system)
            with self._lock:
                self._connections[key] = made
                return made

    def _make_room(self) -> None:
        """Under the lock: close the least recently used idle connection if the pool is full."""
        if len(self._connections) < self.max_connections:
            return
        idle = [(c.last_used, k) for k, c in self._connections.items() if c.busy == 0]
        if not idle:
            raise PoolFull(f"all {self.max_connections} SSH connections are busy")
        _, oldest = min(idle)
        self._connections.pop(oldest).client.close()

    def _connect(self, user: str, token: str, system: System) -> _Connection:
        target = SshTarget(system.host, system.port, system.host_key, self.connect_timeout)
        pkey = self.keys(user, token)
        started = self.clock()
        client = sshexec.connect(target, user, pkey)
        log.info(
            "logged in to %s as %s",
            system.name,
            user,
            extra={"ms": round((self.clock() - started) * 1000, 1)},
        )
        return _Connection(client, target, last_used=self.clock(), busy=1)

    def _release(self, connection: _Connection) -> None:
        with self._lock:
            connection.busy -= 1
            connection.last_used = self.clock()

    def _drop(self, key: tuple[str, str], connection: _Connection) -> None:
        with self._lock:
            if self._connections.get(key) is connection:
                del self._connections[key]
            connection.busy -= 1
        connection.client.close()


__all__ = ["ConnectionPool", "CredentialsUnavailable", "LoginRefused", "PoolFull", "Unreachable"]
