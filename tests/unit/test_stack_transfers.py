"""The external-transfer state machine (transfers.py) on fakes: every phase
of an upload and a download, the ways they fail, invalidation, and what a
new instance does with the transfers a predecessor left in Redis."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from firecrest_testbuild.common.sshexec import Output
from firecrest_testbuild.stack.taskstore import TaskStatus, TaskStore
from firecrest_testbuild.stack.transfers import TRANSFERS, Phase, Transfer, Transfers
from tests.unit.test_stack_fakes import (
    CONFIG,
    FakeRedis,
    FakeShell,
    FakeStaging,
    config,
    eventually,
)

BUCKET = "bucket-test1"
SIZE = 5


class RecordingStore(TaskStore):
    """The task store, remembering every status each task went through."""

    def __init__(self, redis: FakeRedis) -> None:
        super().__init__(redis, 600, "http://api")  # type: ignore[arg-type]
        self.history: dict[str, list[str]] = defaultdict(list)

    def update(self, task_id: str, status: TaskStatus, data: Any = None) -> None:
        self.history[task_id].append(status.value)
        super().update(task_id, status, data)


class World:
    """A storage service's surroundings: Redis, the staging area, the system."""

    def __init__(self, **storage: Any) -> None:
        self.config = config(storage={**CONFIG["storage"], **storage})
        self.redis = FakeRedis()
        self.store = RecordingStore(self.redis)
        self.staging = FakeStaging()
        self.shell = FakeShell({"stat -c %s": Output(0, f"{SIZE}\n".encode(), "")})
        self.transfers = self.new_instance()

    def new_instance(self) -> Transfers:
        """Transfers as a storage service that starts (again) makes them."""
        return Transfers(self.config, self.store, self.staging, self.shell)  # type: ignore[arg-type]

    def upload(self) -> str:
        task_id = self.store.create("test1", "storage", "cluster")["task_id"]
        self.transfers.upload(
            task_id,
            "test1",
            "cluster",
            name="big.bin",
            path="/home/test1/big.bin",
            source="C:/data/big.bin",
            target="/home/test1",
        )
        return task_id

    def download(self) -> str:
        task_id = self.store.create("test1", "storage", "cluster")["task_id"]
        self.transfers.download(task_id, "test1", "cluster", "/home/test1/res.txt")
        return task_id

    def arrive(self, task_id: str, name: str = "big.bin") -> None:
        """The user's POST of the form reaches the staging area."""
        self.staging.objects[(BUCKET, f"{task_id}/{name}")] = SIZE

    def round(self, transfers: Transfers | None = None) -> None:
        """One round of the watcher, and the moves it started run to their end."""
        transfers = transfers or self.transfers
        transfers.step()
        eventually(lambda: not transfers.running)

    def task(self, task_id: str) -> dict[str, Any]:
        task = self.store.get("test1", task_id)
        assert task is not None
        return task

    def transfer(self, task_id: str) -> Transfer | None:
        raw = self.redis.hget(TRANSFERS, task_id)
        return None if raw is None else Transfer.from_json(raw)

    def edit_transfer(self, task_id: str, **fields: Any) -> None:
        """Change the persisted record, as time passing or a crash would."""
        record = json.loads(self.redis.hget(TRANSFERS, task_id) or b"")
        self.redis.hset(TRANSFERS, task_id, json.dumps({**record, **fields}))


def phase_of(world: World, task_id: str) -> Phase:
    transfer = world.transfer(task_id)
    assert transfer is not None
    return transfer.phase


@pytest.fixture
def world() -> World:
    return World()


def move_command(task_id: str) -> str:
    return (
        f"curl -sSf -o /home/test1/big.bin.part 'http://s3:9000/{BUCKET}/{task_id}/big.bin?get'"
        " && mv -f -- /home/test1/big.bin.part /home/test1/big.bin"
    )


def arrived_upload(world: World) -> str:
    task_id = world.upload()
    world.arrive(task_id)
    return task_id


def test_an_upload_hands_out_a_form_then_waits_for_the_object(world: World):
    task_id = world.upload()
    task = world.task(task_id)
    assert task["status"] == "111"
    message = task["data"]["msg"]
    assert message["command"] == (
        f"curl --show-error -s -i -X POST http://s3:9000/{BUCKET} -F key={task_id}/big.bin"
        " -F 'policy=signed policy' -F file=@C:/data/big.bin"
    )
    assert message["parameters"]["files"] == "big.bin"
    assert message["download_url"] == f"http://s3:9000/{BUCKET}/{task_id}/big.bin?get"
    assert (task["data"]["source"], task["data"]["target"]) == ("C:/data/big.bin", "/home/test1")
    world.round()
    assert world.store.history[task_id] == ["110", "111"]
    assert phase_of(world, task_id) is Phase.WAITING
    assert world.shell.commands == []


def test_an_arrived_upload_is_moved_to_the_system_and_its_size_checked(world: World):
    task_id = world.upload()
    world.arrive(task_id)
    world.round()
    assert world.store.history[task_id] == ["110", "111", "112", "113", "114"]
    assert world.shell.commands == [move_command(task_id), "stat -c %s -- /home/test1/big.bin"]
    move = world.shell.calls[0]
    assert (move["user"], move["system"], move["trace"]) == ("test1", "cluster", task_id)
    assert move["time_limit"] == world.config.storage.transfer_timeout
    assert world.task(task_id)["data"]["msg"] == (
        "Download from Object Storage to server has finished"
    )
    assert phase_of(world, task_id) is Phase.DONE


def test_an_object_that_vanished_before_the_move_fails_the_upload(world: World):
    class VanishingStaging(FakeStaging):
        def size_of(self, bucket: str, key: str) -> int | None:
            size = super().size_of(bucket, key)
            self.objects.clear()  # seen by the watcher, gone before the move
            return size

    world.staging = VanishingStaging()
    world.transfers = world.new_instance()
    task_id = world.upload()
    world.arrive(task_id)
    world.round()
    assert world.store.history[task_id][-3:] == ["112", "113", "115"]
    assert world.task(task_id)["data"]["msg"] == (
        "The uploaded object is gone from the staging area"
    )
    assert world.shell.commands == []
    assert phase_of(world, task_id) is Phase.DONE


def test_a_failed_move_removes_the_partial_file_and_fails_with_the_reason(world: World):
    world.shell.answers["curl -sSf -o"] = Output(22, b"", "curl: (22) error: 403\n")
    task_id = world.upload()
    world.arrive(task_id)
    world.round()
    assert world.task(task_id)["status"] == "115"
    assert world.task(task_id)["data"]["msg"] == (
        "Moving the file to /home/test1/big.bin failed: curl: (22) error: 403"
    )
    assert world.shell.commands == [move_command(task_id), "rm -f -- /home/test1/big.bin.part"]


def test_a_moved_file_of_another_size_fails_the_upload(world: World):
    world.shell.answers["stat -c %s"] = Output(0, b"4\n", "")
    task_id = world.upload()
    world.arrive(task_id)
    world.round()
    assert world.task(task_id)["status"] == "115"
    assert world.task(task_id)["data"]["msg"] == "/home/test1/big.bin has 4 bytes, the upload 5"


def test_an_unused_form_fails_once_its_deadline_passed_and_is_then_forgotten(world: World):
    task_id = world.upload()
    world.round()
    assert world.task(task_id)["status"] == "111"
    world.edit_transfer(task_id, expires_at=0)  # a week later
    world.round()
    assert world.task(task_id)["status"] == "115"
    assert world.task(task_id)["data"]["msg"] == "The upload URL expired before any upload"
    assert phase_of(world, task_id) is Phase.DONE
    world.round()  # done, and its URLs expired: nothing left to invalidate
    assert world.transfer(task_id) is None
    assert not world.transfers.invalidate(task_id)


def test_invalidating_a_waiting_upload_removes_its_object_and_fails_it(world: World):
    task_id = world.upload()
    assert world.transfers.invalidate(task_id)
    assert world.staging.removed == [(BUCKET, f"{task_id}/big.bin")]
    assert phase_of(world, task_id) is Phase.INVALIDATED
    world.round()
    assert world.task(task_id)["status"] == "115"
    assert world.task(task_id)["data"]["msg"] == (
        "The URL was invalidated before the transfer finished"
    )
    assert phase_of(world, task_id) is Phase.DONE


def test_only_known_transfers_can_be_invalidated(world: World):
    assert not world.transfers.invalidate("0" * 32)
    assert world.staging.removed == []


def test_a_download_is_staged_by_the_system_then_its_url_handed_out(world: World):
    task_id = world.download()
    assert world.task(task_id)["data"] == {
        "source": "/home/test1/res.txt",
        "system_name": "cluster",
    }
    assert phase_of(world, task_id) is Phase.STAGING
    world.round()
    assert world.store.history[task_id] == ["116", "117"]
    assert world.shell.commands == [
        f"curl -sSf -X PUT -T /home/test1/res.txt 'http://s3:9000/{BUCKET}/{task_id}/res.txt?put'"
    ]
    assert world.shell.calls[0]["time_limit"] == world.config.storage.transfer_timeout
    assert world.task(task_id)["data"] == {
        "url": f"http://s3:9000/{BUCKET}/{task_id}/res.txt?get",
        "source": "/home/test1/res.txt",
        "system_name": "cluster",
    }
    assert phase_of(world, task_id) is Phase.DONE


def test_a_failed_staging_ends_the_download_with_the_error(world: World):
    world.shell.answers["curl -sSf -X PUT"] = Output(26, b"", "curl: (26) cannot read\n")
    task_id = world.download()
    world.round()
    assert world.task(task_id)["status"] == "118"
    assert world.task(task_id)["data"] == {
        "error": "Staging /home/test1/res.txt failed: curl: (26) cannot read",
        "source": "/home/test1/res.txt",
        "system_name": "cluster",
    }


@pytest.mark.parametrize(
    ("start", "name", "status"),
    [(arrived_upload, "big.bin", "114"), (World.download, "res.txt", "117")],
)
def test_invalidating_a_finished_transfer_removes_its_object_and_keeps_the_task(
    world: World, start: Callable[[World], str], name: str, status: str
):
    task_id = start(world)
    world.round()
    assert world.transfers.invalidate(task_id)
    assert world.staging.removed == [(BUCKET, f"{task_id}/{name}")]
    assert phase_of(world, task_id) is Phase.DONE
    world.round()
    assert world.task(task_id)["status"] == status


def test_a_download_invalidated_before_staging_is_never_staged(world: World):
    task_id = world.download()
    world.transfers.invalidate(task_id)
    world.round()
    assert world.shell.commands == []
    assert world.task(task_id)["status"] == "116"
    assert phase_of(world, task_id) is Phase.DONE


@pytest.mark.parametrize(
    ("start", "command", "status"),
    [(arrived_upload, "curl -sSf -o", "115"), (World.download, "curl -sSf -X PUT", "118")],
)
def test_an_unexpected_error_on_the_system_still_ends_the_task(
    world: World, start: Callable[[World], str], command: str, status: str
):
    def broken(_: str) -> Output:
        raise RuntimeError("connection reset")

    world.shell.answers[command] = broken
    task_id = start(world)
    world.round()
    task = world.task(task_id)
    assert task["status"] == status
    assert "Internal error: RuntimeError" in json.dumps(task["data"])
    assert phase_of(world, task_id) is Phase.DONE


def test_a_transfer_being_moved_is_not_started_again_by_later_rounds(world: World):
    release = threading.Event()

    def slow_move(_: str) -> Output:
        release.wait(5)
        return Output(0, b"", "")

    world.shell.answers["curl -sSf -o"] = slow_move
    task_id = world.upload()
    world.arrive(task_id)
    for _ in range(3):
        world.transfers.step()
    assert world.task(task_id)["status"] == "113"
    release.set()
    eventually(lambda: not world.transfers.running)
    assert world.shell.commands.count(move_command(task_id)) == 1
    assert world.task(task_id)["status"] == "114"


def test_a_new_instance_runs_again_a_move_that_a_restart_interrupted(world: World):
    predecessor_dies = threading.Event()
    moves: list[str] = []

    def move(command: str) -> Output:
        moves.append(command)
        if len(moves) == 1:
            predecessor_dies.wait(5)  # the first move never ends: its process is gone
        return Output(0, b"", "")

    world.shell.answers["curl -sSf -o"] = move
    task_id = world.upload()
    world.arrive(task_id)
    world.transfers.step()
    eventually(lambda: len(moves) == 1)
    assert phase_of(world, task_id) is Phase.MOVING

    successor = world.new_instance()
    world.round(successor)
    assert world.task(task_id)["status"] == "114"
    assert moves == [move_command(task_id)] * 2  # safe: each writes <file>.part first
    predecessor_dies.set()


def test_a_new_instance_picks_up_waiting_uploads_and_pending_downloads(world: World):
    upload_id = world.upload()
    download_id = world.download()  # the predecessor stops before any round

    successor = world.new_instance()
    world.round(successor)
    assert world.task(upload_id)["status"] == "111"
    assert world.task(download_id)["status"] == "117"
    world.arrive(upload_id)
    world.round(successor)
    assert world.task(upload_id)["status"] == "114"


def test_started_transfers_move_along_every_poll_interval():
    world = World(pollInterval=0.01)
    world.transfers.start()
    try:
        task_id = world.upload()
        world.arrive(task_id)
        eventually(lambda: world.task(task_id)["status"] == "114")
    finally:
        world.transfers.stop.set()
