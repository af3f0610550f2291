"""Tasks in Redis (TaskStore) and the background runner (TaskRunner), on a
fake Redis: statuses, ownership, expiry, and what a restart leaves behind."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
import redis

from firecrest_testbuild.stack.jobs import fail_interrupted_tasks
from firecrest_testbuild.stack.taskstore import INTERRUPTED, TaskRunner, TaskStatus, TaskStore
from tests.unit.test_stack_fakes import FakeRedis, eventually

EXPIRY = 60


@pytest.fixture
def fake_redis() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def store(fake_redis: FakeRedis) -> TaskStore:
    return TaskStore(fake_redis, EXPIRY, "http://api:8000/")  # type: ignore[arg-type]


def test_statuses_are_the_v1_codes_and_serialize_as_bare_strings():
    assert {status.name: status.value for status in TaskStatus} == {
        "QUEUED": "100",
        "IN_PROGRESS": "101",
        "FORM_URL_WAITING": "110",
        "FORM_URL_RECEIVED": "111",
        "UPLOAD_CONFIRMED": "112",
        "DOWNLOAD_TO_SERVER_STARTED": "113",
        "DOWNLOAD_TO_SERVER_FINISHED": "114",
        "DOWNLOAD_TO_SERVER_FAILED": "115",
        "UPLOAD_FROM_FILESYSTEM_STARTED": "116",
        "UPLOAD_FROM_FILESYSTEM_FINISHED": "117",
        "UPLOAD_FROM_FILESYSTEM_FAILED": "118",
        "SUCCESS": "200",
        "FAILED": "400",
    }
    assert json.dumps({"status": TaskStatus.DOWNLOAD_TO_SERVER_FAILED}) == '{"status": "115"}'
    assert f"{TaskStatus.SUCCESS}" == "200"
    assert TaskStatus.FAILED.description == "Finished with errors"


def test_a_new_task_is_queued_and_names_its_url(store: TaskStore, fake_redis: FakeRedis):
    task = store.create("test1", "compute", "cluster")
    task_id = task["task_id"]
    assert task["task_url"] == f"http://api:8000/tasks/{task_id}"
    stored = store.get("test1", task_id)
    assert stored is not None
    assert (stored["status"], stored["description"]) == ("100", "Queued")
    assert (stored["user"], stored["service"], stored["system"]) == ("test1", "compute", "cluster")
    assert b'"status": "100"' in fake_redis.get(f"task:{task_id}")


def test_an_update_sets_status_description_and_data(store: TaskStore):
    task_id = store.create("test1", "storage", "cluster")["task_id"]
    store.update(task_id, TaskStatus.DOWNLOAD_TO_SERVER_FINISHED, {"msg": "done"})
    store.update(task_id, TaskStatus.DOWNLOAD_TO_SERVER_FINISHED)  # data None: kept
    task = store.get("test1", task_id)
    assert task is not None
    assert task["status"] == "114"
    assert task["description"] == "Download from Object Storage to server has finished"
    assert task["data"] == {"msg": "done"}


def test_a_user_sees_only_their_own_tasks(store: TaskStore):
    mine = store.create("test1", "compute", "cluster")["task_id"]
    theirs = store.create("test2", "compute", "cluster")["task_id"]
    assert store.get("test2", mine) is None
    assert list(store.of_user("test1")) == [mine]
    assert list(store.of_user("test2")) == [theirs]
    assert store.of_user("test1", wanted=[theirs]) == {}


def test_of_user_lists_in_creation_order_and_selects_the_wanted(
    store: TaskStore, fake_redis: FakeRedis
):
    first = store.create("test1", "compute", "cluster")["task_id"]
    fake_redis.advance(1)
    second = store.create("test1", "compute", "cluster")["task_id"]
    assert list(store.of_user("test1")) == [first, second]
    assert list(store.of_user("test1", wanted=[second, "f" * 32])) == [second]


def test_tasks_expire_after_their_last_change(store: TaskStore, fake_redis: FakeRedis):
    task_id = store.create("test1", "compute", "cluster")["task_id"]
    fake_redis.advance(EXPIRY - 10)
    store.update(task_id, TaskStatus.IN_PROGRESS)
    fake_redis.advance(EXPIRY - 10)  # past the creation's expiry, not the update's
    assert store.get("test1", task_id) is not None
    fake_redis.advance(10)
    assert store.get("test1", task_id) is None
    store.update(task_id, TaskStatus.SUCCESS, "late")  # does not bring it back
    assert store.get("test1", task_id) is None


def test_expired_tasks_leave_the_users_listing(store: TaskStore, fake_redis: FakeRedis):
    old = store.create("test1", "compute", "cluster")["task_id"]
    fake_redis.advance(EXPIRY / 2)
    new = store.create("test1", "compute", "cluster")["task_id"]  # renews the listing
    fake_redis.advance(EXPIRY / 2)
    assert list(store.of_user("test1")) == [new]
    assert fake_redis.zrange("user-tasks:test1", 0, -1) == [new.encode()]
    assert old not in store.of_user("test1", wanted=[old])


def test_a_task_runs_in_progress_then_ends_with_its_outcome(store: TaskStore):
    runner = TaskRunner(store, workers=1, service="compute")
    task_id = store.create("test1", "compute", "cluster")["task_id"]
    started = threading.Event()
    release = threading.Event()

    def work():
        started.set()
        release.wait(5)
        return TaskStatus.SUCCESS, {"jobid": 7}

    runner.submit(task_id, work)
    started.wait(5)
    assert store.get("test1", task_id)["status"] == "101"
    release.set()
    runner.pool.shutdown(wait=True)
    task = store.get("test1", task_id)
    assert (task["status"], task["data"]) == ("200", {"jobid": 7})
    assert runner.fail_interrupted() == []  # nothing left marked as running


def test_work_that_raises_fails_its_task(store: TaskStore):
    runner = TaskRunner(store, workers=1, service="compute")
    task_id = store.create("test1", "compute", "cluster")["task_id"]

    def work():
        raise RuntimeError("boom")

    runner.submit(task_id, work)
    runner.pool.shutdown(wait=True)
    task = store.get("test1", task_id)
    assert task["status"] == "400"
    assert "Internal error" in task["data"]
    assert runner.fail_interrupted() == []


def test_a_runner_that_starts_fails_what_its_predecessor_left_running(store: TaskStore):
    release = threading.Event()
    crashed = TaskRunner(store, workers=1, service="compute,storage")
    running = store.create("test1", "compute", "cluster")["task_id"]
    queued = store.create("test1", "compute", "cluster")["task_id"]
    crashed.submit(running, lambda: (release.wait(5), (TaskStatus.SUCCESS, "late"))[1])
    crashed.submit(queued, lambda: (TaskStatus.SUCCESS, "late"))
    eventually(lambda: store.get("test1", running)["status"] == "101")

    other_services = TaskRunner(store, workers=1, service="compute")
    assert other_services.fail_interrupted() == []
    successor = TaskRunner(store, workers=1, service="compute,storage")
    assert sorted(successor.fail_interrupted()) == sorted([running, queued])
    for task_id in (running, queued):
        task = store.get("test1", task_id)
        assert (task["status"], task["data"]) == ("400", INTERRUPTED)
    assert successor.fail_interrupted() == []
    release.set()
    crashed.pool.shutdown(wait=True)


def test_the_start_hook_lets_a_process_start_while_the_task_store_is_down():
    class DownRedis(FakeRedis):
        def smembers(self, key: str) -> set[bytes]:
            raise redis.ConnectionError("no answer")

    store = TaskStore(DownRedis(), EXPIRY, "http://api")  # type: ignore[arg-type]
    context = SimpleNamespace(runner=TaskRunner(store, 1, "compute"))
    fail_interrupted_tasks(context)  # type: ignore[arg-type]  # raises if the hook lets it through
