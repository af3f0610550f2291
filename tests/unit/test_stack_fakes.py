"""Small fakes of what the stack talks to (Redis, the staging area, the shell
to the systems), shared by the stack's unit tests; and the tests that show
the fake Redis behaves as the stack relies on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack.config import StackConfig, System, parse
from firecrest_testbuild.stack.staging import UploadForm

CONFIG = {
    "systems": [{"name": "cluster", "host": "cluster", "hostKey": "ssh-ed25519 AAAA"}],
    "auth": {"jwksUrl": "http://keycloak/certs", "issuer": "http://issuer"},
    "ssh": {"caPrivateKey": "/run/ca"},
    "tasks": {"redisUrl": "redis://redis:6379/0", "expirySeconds": 60},
    "storage": {"s3Url": "http://s3:9000", "accessKey": "a", "secretKey": "b"},
}


def config(**changes: Any) -> StackConfig:
    return parse({**CONFIG, **changes}, "test")


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class FakeRedis:
    """The Redis commands the stack uses, in memory, with key expiry on a
    clock the test moves (`advance`). Answers are bytes, as redis-py's are."""

    def __init__(self) -> None:
        self.now = 0.0
        self.data: dict[bytes, Any] = {}
        self.deadlines: dict[bytes, float] = {}
        self.lock = threading.RLock()

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def _live(self, key: str | bytes) -> bytes:
        name = _bytes(key)
        if name in self.deadlines and self.now >= self.deadlines[name]:
            self.data.pop(name, None)
            self.deadlines.pop(name)
        return name

    def _container(self, key: str | bytes, kind: type) -> Any:
        return self.data.setdefault(self._live(key), kind())

    def ping(self) -> bool:
        return True

    def get(self, key: str) -> bytes | None:
        with self.lock:
            return self.data.get(self._live(key))

    def set(self, key: str, value: str | bytes, ex: int | None = None) -> bool:
        with self.lock:
            name = self._live(key)
            self.data[name] = _bytes(value)
            self.deadlines.pop(name, None)
            if ex is not None:
                self.deadlines[name] = self.now + ex
            return True

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def expire(self, key: str, seconds: int) -> bool:
        with self.lock:
            name = self._live(key)
            if name in self.data:
                self.deadlines[name] = self.now + seconds
            return name in self.data

    def zadd(self, key: str, mapping: dict[str, float]) -> int:
        with self.lock:
            members = self._container(key, dict)
            members.update({_bytes(member): score for member, score in mapping.items()})
            return len(mapping)

    def zrange(self, key: str, start: int, end: int) -> list[bytes]:
        assert (start, end) == (0, -1), "only whole ranges are faked"
        with self.lock:
            members = self.data.get(self._live(key), {})
            return sorted(members, key=members.__getitem__)

    def zrem(self, key: str, *members: str) -> int:
        with self.lock:
            found = self.data.get(self._live(key), {})
            return sum(found.pop(_bytes(member), None) is not None for member in members)

    def sadd(self, key: str, *members: str) -> int:
        with self.lock:
            self._container(key, set).update(_bytes(member) for member in members)
            return len(members)

    def srem(self, key: str, *members: str) -> int:
        with self.lock:
            found = self.data.get(self._live(key), set())
            removed = found & {_bytes(member) for member in members}
            found -= removed
            return len(removed)

    def smembers(self, key: str) -> set[bytes]:
        with self.lock:
            return set(self.data.get(self._live(key), set()))

    def hset(self, key: str, field: str, value: str) -> int:
        with self.lock:
            self._container(key, dict)[_bytes(field)] = _bytes(value)
            return 1

    def hget(self, key: str, field: str) -> bytes | None:
        with self.lock:
            return self.data.get(self._live(key), {}).get(_bytes(field))

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        with self.lock:
            return dict(self.data.get(self._live(key), {}))

    def hdel(self, key: str, *fields: str | bytes) -> int:
        with self.lock:
            found = self.data.get(self._live(key), {})
            return sum(found.pop(_bytes(field), None) is not None for field in fields)

    def pipeline(self) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    """Commands queued, then run together by execute()."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.queued: list[Callable[[], Any]] = []

    def __getattr__(self, command: str) -> Callable[..., None]:
        def queue(*args: Any, **kwargs: Any) -> None:
            self.queued.append(lambda: getattr(self.redis, command)(*args, **kwargs))

        return queue

    def execute(self) -> list[Any]:
        with self.redis.lock:
            return [command() for command in self.queued]


class FakeStaging:
    """The staging area: objects and their sizes, URLs that name them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], int] = {}
        self.removed: list[tuple[str, str]] = []

    def bucket_for(self, user: str) -> str:
        return f"bucket-{user}"

    def upload_form(self, bucket: str, key: str) -> UploadForm:
        return UploadForm(f"http://s3:9000/{bucket}", {"key": key, "policy": "signed policy"})

    def get_url(self, bucket: str, key: str) -> str:
        return f"http://s3:9000/{bucket}/{key}?get"

    def put_url(self, bucket: str, key: str) -> str:
        return f"http://s3:9000/{bucket}/{key}?put"

    def size_of(self, bucket: str, key: str) -> int | None:
        return self.objects.get((bucket, key))

    def remove(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)
        self.removed.append((bucket, key))


Answer = Output | Callable[[str], Output]


class FakeShell:
    """A system that answers each command by the first answer whose prefix
    starts it (a function of the command, or a fixed Output); every command
    is recorded with its user, system, time limit, input and trace."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self.answers: dict[str, Answer] = answers or {}
        self.commands: list[str] = []
        self.calls: list[dict[str, Any]] = []

    def run(
        self,
        user: str,
        system: System,
        command: str,
        time_limit: int,
        stdin: bytes = b"",
        trace: str | None = None,
    ) -> Output:
        self.commands.append(command)
        self.calls.append(
            {
                "user": user,
                "system": system.name,
                "time_limit": time_limit,
                "stdin": stdin,
                "trace": trace,
            }
        )
        for prefix, answer in self.answers.items():
            if command.startswith(prefix):
                return answer(command) if callable(answer) else answer
        return Output(0, b"", "")


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for background work (threads of the stack) to make `check` true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for background work"
        time.sleep(0.005)


def test_keys_expire_on_the_fake_clock_and_set_renews_them():
    redis = FakeRedis()
    redis.set("a", "1", ex=10)
    redis.advance(9)
    redis.set("a", "2", ex=10)
    redis.advance(9)
    assert redis.get("a") == b"2"
    redis.advance(1)
    assert redis.get("a") is None


def test_sorted_sets_keep_score_order_and_expire_whole():
    redis = FakeRedis()
    pipeline = redis.pipeline()
    pipeline.zadd("z", {"late": 2.0})
    pipeline.zadd("z", {"early": 1.0})
    pipeline.expire("z", 5)
    pipeline.execute()
    assert redis.zrange("z", 0, -1) == [b"early", b"late"]
    redis.advance(5)
    assert redis.zrange("z", 0, -1) == []


def test_sets_and_hashes_answer_bytes():
    redis = FakeRedis()
    redis.sadd("s", "x", "y")
    redis.srem("s", "x")
    redis.hset("h", "k", "v")
    assert redis.smembers("s") == {b"y"}
    assert redis.hgetall("h") == {b"k": b"v"}
    assert redis.hdel("h", b"k") == 1
    assert redis.hget("h", "k") is None
