"""rsvmgmt, the login node's reservation tool: its command line, its policy
and the Slurm commands it runs, on a fake Slurm (the helper's logic is
loaded from the image's file); and how sudo, the helper and the command
wrapper's allow-list fit together."""

from __future__ import annotations

import datetime
import importlib.machinery
import importlib.util
import io
import os
import pwd
import subprocess
import sys

import pytest

from firecrest_testbuild.harness.paths import IMAGES

FILES = IMAGES / "cluster/files"
HELPER = FILES / "usr/local/sbin/rsvmgmt-priv"
TOOL = FILES / "usr/local/bin/rsvmgmt"
SUDOERS = FILES / "etc/sudoers.d/rsvmgmt"

loader = importlib.machinery.SourceFileLoader("rsvmgmt_priv", str(HELPER))
spec = importlib.util.spec_from_loader("rsvmgmt_priv", loader)
assert spec is not None
rsv = importlib.util.module_from_spec(spec)
sys.modules["rsvmgmt_priv"] = rsv  # its dataclasses look their module up
loader.exec_module(rsv)

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0)
START = "2030-06-02T10:00:00"
END = "2030-06-02T12:00:00"


class FakeSlurm:
    """scontrol and sacctmgr as root would answer them, on reservations in
    memory; every command line is recorded."""

    def __init__(self) -> None:
        self.reservations: dict[str, dict[str, str]] = {}
        self.commands: list[list[str]] = []
        self.accounts = {"test1": ["testbuild"], "test2": ["testbuild", "other"]}
        self.fail_with: str | None = None  # scontrol create/update/delete says this

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        program, words = argv[0], argv[1:]
        if program == rsv.SACCTMGR:
            user = next(w.split("=", 1)[1] for w in words if w.startswith("user="))
            return 0, "".join(f"{a}\n" for a in self.accounts.get(user, [])), ""
        assert program == rsv.SCONTROL, argv
        if words[:2] == ["-o", "show"]:
            return 0, self.show(words[2]), ""
        if self.fail_with and words[0] in ("create", "update", "delete"):
            return 1, "", self.fail_with + "\n"
        fields = dict(word.split("=", 1) for word in words if "=" in word)
        if words[:2] == ["create", "reservation"]:
            name = fields.pop("ReservationName", f"{fields['Accounts']}_1")
            self.reservations[name] = fields
            return 0, f"Reservation created: {name}\n", ""
        if words[0] == "update":
            self.reservations[fields.pop("ReservationName")].update(fields)
            return 0, "", ""
        if words[0] == "delete":
            del self.reservations[fields["ReservationName"]]
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def show(self, kind: str) -> str:
        if kind == "partition":
            return "".join(
                f"PartitionName={p} AllowGroups=ALL TotalNodes=2 TotalCPUs=4 State=UP\n"
                for p in ("part01", "part02", "xfer")
            )
        if kind == "node":
            return (
                "NodeName=c1 Arch=x86_64 ActiveFeatures=gpu AvailableFeatures=gpu State=IDLE\n"
                "NodeName=c2 Arch=x86_64 ActiveFeatures=(null) State=IDLE\n"
            )
        assert kind == "reservation"
        if not self.reservations:
            return "No reservations in the system\n"
        return "".join(
            f"ReservationName={name} StartTime={r.get('StartTime')} EndTime={r.get('EndTime')}"
            f" Duration=02:00:00 Nodes=c1 NodeCnt={r.get('NodeCnt')} CoreCnt=2"
            f" Features=(null) PartitionName={r.get('PartitionName', '(null)')} Flags="
            f" TRES=cpu=2 Users={r.get('Users')} Groups=(null) Accounts={r.get('Accounts')}"
            " Licenses=(null) State=INACTIVE BurstBuffer=(null) Watts=n/a\n"
            for name, r in self.reservations.items()
        )

    def changes(self) -> list[list[str]]:
        """The commands that would change Slurm."""
        return [c for c in self.commands if c[0] == rsv.SCONTROL and c[1] != "-o"]


def tool(slurm: FakeSlurm, user: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = rsv.main(list(argv), user, rsv.Slurm(slurm), NOW, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def slurm() -> FakeSlurm:
    return FakeSlurm()


def test_create_makes_a_reservation_of_the_caller_only(slurm: FakeSlurm):
    status, out, err = tool(slurm, "test1", "-a", "testbuild", "2", "part01", START, END, "r-1")
    assert (status, out, err) == (0, "Reservation created: r-1\n", "")
    assert slurm.changes() == [
        [
            rsv.SCONTROL,
            "create",
            "reservation",
            "ReservationName=r-1",
            "Users=test1",
            "Accounts=testbuild",
            "NodeCnt=2",
            "PartitionName=part01",
            f"StartTime={START}",
            f"EndTime={END}",
        ]
    ]


def test_a_node_feature_is_a_node_type_too_and_a_name_is_optional(slurm: FakeSlurm):
    status, out, _ = tool(slurm, "test1", "-a", "testbuild", "1", "gpu", START, END)
    assert (status, out) == (0, "Reservation created: testbuild_1\n")
    assert "Features=gpu" in slurm.changes()[0]
    assert not any(w.startswith("ReservationName") for w in slurm.changes()[0])


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        # Names: FirecREST v1's rule (lowercase, digits, -, _, $; no leading digit or dash).
        (["-a", "testbuild", "1", "part01", START, END, "Upper"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "r1 Users=test2"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "r1,r2"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "-r1"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "9r"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "r1\n"], "not valid"),
        (["-a", "testbuild", "1", "part01", START, END, "r" * 65], "not valid"),
        # Accounts: only the caller's associations.
        (["-a", "other", "1", "part01", START, END, "r1"], "not a member of the other account"),
        (["-a", "root", "1", "part01", START, END, "r1"], "not a member of the root account"),
        (["-a", "testbuild Users=test2", "1", "part01", START, END, "r1"], "not a member"),
        # Nodes: a whole number, 1 to what the type has.
        (["-a", "testbuild", "0", "part01", START, END, "r1"], "NodeCnt less than 1"),
        (["-a", "testbuild", "3", "part01", START, END, "r1"], "greater than 2 available"),
        (["-a", "testbuild", "2", "gpu", START, END, "r1"], "greater than 1 available gpu"),
        (["-a", "testbuild", "-1", "part01", START, END, "r1"], "whole number"),
        (["-a", "testbuild", "1 ", "part01", START, END, "r1"], "whole number"),
        (["-a", "testbuild", "1", "knl", START, END, "r1"], "not a partition or node feature"),
        # Times: the format, in the future, end after start, bounded.
        (["-a", "testbuild", "1", "part01", "2030-06-02 10:00:00", END, "r1"], "invalid start"),
        (["-a", "testbuild", "1", "part01", START, "2030-6-2T12:00:00", "r1"], "invalid end"),
        (["-a", "testbuild", "1", "part01", START, "2030-06-31T12:00:00", "r1"], "invalid end"),
        (["-a", "testbuild", "1", "part01", "2030-06-01T11:00:00", END, "r1"], "in the past"),
        (["-a", "testbuild", "1", "part01", START, START, "r1"], "not after its start"),
        (["-a", "testbuild", "1", "part01", END, START, "r1"], "not after its start"),
        (["-a", "testbuild", "1", "part01", START, "2030-06-10T10:00:01", "r1"], "at most 7"),
        (
            ["-a", "testbuild", "1", "part01", "2031-06-02T10:00:00", "2031-06-02T11:00:00", "r"],
            "up to 1 year",
        ),
    ],
)
def test_creations_outside_the_policy_are_refused_and_change_nothing(
    slurm: FakeSlurm, argv: list[str], reason: str
):
    status, out, err = tool(slurm, "test1", *argv)
    assert status == 1 and out == ""
    assert err.startswith("rsvmgmt: Error: ") and reason in err, err
    assert slurm.changes() == []


def test_a_user_holds_at_most_five_reservations(slurm: FakeSlurm):
    for n in range(rsv.MAX_RESERVATIONS):
        assert tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, f"r{n}")[0] == 0
    status, _, err = tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "r9")
    assert status == 1 and "Only 5 reservations are allowed at one time." in err
    # Other users' reservations do not count against test2.
    assert tool(slurm, "test2", "-a", "other", "1", "part01", START, END, "s1")[0] == 0


def test_listing_shows_the_callers_reservations_between_dashed_lines(slurm: FakeSlurm):
    tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "mine")
    tool(slurm, "test2", "-a", "other", "1", "part02", START, END, "theirs")
    status, out, _ = tool(slurm, "test1", "-l")
    lines = out.splitlines()
    assert status == 0 and lines[0] == "rsvmgmt: Current Reservations"
    assert lines[1] == lines[-1] == rsv.DASHES and len(lines) == 4
    assert lines[2].startswith("ReservationName=mine ") and "Users=test1" in lines[2]
    _, empty, _ = tool(FakeSlurm(), "test1", "-l")
    assert empty.splitlines()[1:] == [rsv.DASHES, rsv.DASHES]


def test_the_owner_updates_and_deletes(slurm: FakeSlurm):
    tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "r1")
    later = ("2030-06-03T10:00:00", "2030-06-03T11:30:00")
    status, out, _ = tool(slurm, "test1", "-u", "r1", "2", "part02", *later)
    assert (status, out) == (0, "Reservation r1 updated\n")
    assert slurm.changes()[-1] == [
        rsv.SCONTROL,
        "update",
        "ReservationName=r1",
        "NodeCnt=2",
        "PartitionName=part02",
        f"StartTime={later[0]}",
        f"EndTime={later[1]}",
    ]
    assert slurm.reservations["r1"]["Users"] == "test1"  # an update never changes Users
    status, out, _ = tool(slurm, "test1", "-d", "r1")
    assert (status, out) == (0, "rsvmgmt: Reservation r1 removed\n")
    assert slurm.changes()[-1] == [rsv.SCONTROL, "delete", "ReservationName=r1"]
    assert slurm.reservations == {}


def test_another_users_reservation_cannot_be_updated_or_deleted(slurm: FakeSlurm):
    tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "r1")
    before = list(slurm.changes())
    status, _, err = tool(slurm, "test2", "-u", "r1", "1", "part01", START, END)
    assert status == 1 and err == "rsvmgmt: Error: You are not an owner of the r1 reservation\n"
    status, _, err = tool(slurm, "test2", "-d", "r1")
    assert status == 1 and "You are not an owner of the r1 reservation" in err
    status, _, err = tool(slurm, "test1", "-d", "nosuch")
    assert status == 1 and "nosuch doesn't seem to be a valid reservation" in err
    status, _, err = tool(slurm, "test1", "-d", "R1")
    assert status == 1 and "not valid" in err
    assert slurm.changes() == before and "r1" in slurm.reservations


def test_an_update_is_held_to_the_same_policy(slurm: FakeSlurm):
    tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "r1")
    before = list(slurm.changes())
    for args, reason in (
        (["3", "part01", START, END], "greater than 2"),
        (["1", "part01", "2030-06-01T11:00:00", END], "in the past"),
        (["1", "part01", END, START], "not after its start"),
        (["1", "nosuch", START, END], "not a partition"),
    ):
        status, _, err = tool(slurm, "test1", "-u", "r1", *args)
        assert status == 1 and reason in err, err
    assert slurm.changes() == before


def test_what_slurm_refuses_is_passed_on(slurm: FakeSlurm):
    slurm.fail_with = "Error creating the reservation: Requested nodes are busy"
    status, out, err = tool(slurm, "test1", "-a", "testbuild", "1", "part01", START, END, "r1")
    assert status == 1 and out == ""
    assert err == "rsvmgmt: Error: Error creating the reservation: Requested nodes are busy\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["-x"],
        ["-l", "extra"],
        ["-a", "testbuild", "1", "part01", START],
        ["-a", "testbuild", "1", "part01", START, END, "r1", "Users=test2"],
        ["-u", "r1", "1", "part01", START],
        ["-d"],
        ["-d", "r1", "r2"],
        ["--", "-l"],
    ],
)
def test_other_command_lines_are_usage_errors(slurm: FakeSlurm, argv: list[str]):
    status, out, err = tool(slurm, "test1", *argv)
    assert status == 2 and out == "" and err.startswith("rsvmgmt: Error: ") and "usage:" in err
    assert slurm.commands == []


def test_help_and_version(slurm: FakeSlurm):
    assert tool(slurm, "test1", "-h")[:2] == (0, rsv.USAGE + "\n")
    assert tool(slurm, "test1", "-V")[:2] == (0, rsv.VERSION + "\n")


def test_the_caller_is_the_user_sudo_ran_it_for():
    someone = next(entry for entry in pwd.getpwall() if entry.pw_uid != 0)
    with pytest.raises(rsv.Refused, match="through sudo"):
        rsv.caller({"SUDO_UID": str(someone.pw_uid)}, euid=someone.pw_uid)
    with pytest.raises(rsv.Refused, match="no calling user"):
        rsv.caller({}, euid=0)
    with pytest.raises(rsv.Refused, match="no calling user"):
        rsv.caller({"SUDO_UID": "0"}, euid=0)
    with pytest.raises(rsv.Refused, match="no calling user"):
        rsv.caller({"SUDO_UID": "1000; id"}, euid=0)
    with pytest.raises(rsv.Refused, match="no calling user"):
        rsv.caller({"SUDO_UID": "\u0661"}, euid=0)  # a digit, but not an ASCII one
    assert rsv.caller({"SUDO_UID": str(someone.pw_uid)}, euid=0) == someone.pw_name


def test_the_helper_run_outside_sudo_refuses_before_touching_slurm():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    done = subprocess.run(
        [sys.executable, str(HELPER), "-l"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("rsvmgmt: Error: ") and "rsvmgmt" in done.stderr


def test_sudo_runs_the_helper_and_only_it_for_every_user():
    rules = [line for line in SUDOERS.read_text().splitlines() if line and not line.startswith("#")]
    assert "ALL ALL=(root) NOPASSWD: /usr/local/sbin/rsvmgmt-priv" in rules
    assert [r for r in rules if not r.startswith("Defaults")] == [
        "ALL ALL=(root) NOPASSWD: /usr/local/sbin/rsvmgmt-priv"
    ]
    command = [line for line in TOOL.read_text().splitlines() if line.startswith("exec ")]
    assert command == ['exec /usr/bin/sudo -n -- /usr/local/sbin/rsvmgmt-priv "$@"']
    assert HELPER.read_text().startswith("#!/usr/bin/python3 -I\n")  # no PYTHON* from the caller
    for path in (HELPER, TOOL):
        assert os.access(path, os.X_OK), path
    dockerfile = (IMAGES / "cluster/Dockerfile").read_text()
    assert "sudo" in dockerfile and "chmod 0440 /etc/sudoers.d/rsvmgmt" in dockerfile
