"""What the stack reads off `ls`, squeue, sacct and scontrol output."""

from __future__ import annotations

from firecrest_testbuild.stack import slurm
from firecrest_testbuild.stack.listing import parse_listing, unquote_c

LS = """total 12
drwxr-xr-x 2 test1 test1 4096 2026-11-29T10:00:00 "dir"
-rw-r--r-- 1 test1 test1   14 2026-11-29T10:01:02 "with space \\"quoted\\""
lrwxrwxrwx 1 test1 test1    5 2026-11-29T10:02:03 "link" -> "f.txt"
-rw------- 1 1001 1001 0 2026-11-29T10:03:04 "caf\\303\\251\\nline"
crw-rw-rw- 1 root root 1, 3 2026-11-29T10:04:05 "null"
"""


def test_ls_entries_keep_names_links_sizes_and_dates():
    entries = parse_listing(LS, "/home/test1", recursive=False)
    assert [e["name"] for e in entries] == [
        "dir",
        'with space "quoted"',
        "link",
        "café\nline",
        "null",
    ]
    link = entries[2]
    assert (link["type"], link["link_target"], link["permissions"]) == ("l", "f.txt", "rwxrwxrwx")
    assert entries[1] | {"name": ""} == {
        "name": "",
        "type": "-",
        "link_target": "",
        "user": "test1",
        "group": "test1",
        "permissions": "rw-r--r--",
        "last_modified": "2026-11-29T10:01:02",
        "size": "14",
    }
    assert entries[3]["user"] == "1001"
    assert entries[4]["size"] == "1,3"


def test_recursive_listing_names_entries_relative_to_the_target():
    text = (
        '"/home/test1/w":\ntotal 4\n'
        'drwxr-xr-x 2 test1 test1 4096 2026-11-29T10:00:00 "sub"\n\n'
        '"/home/test1/w/sub":\ntotal 0\n'
        '-rw-r--r-- 1 test1 test1 0 2026-11-29T10:00:00 "inner"\n'
    )
    names = [e["name"] for e in parse_listing(text, "/home/test1/w/", recursive=True)]
    assert names == ["sub", "sub/inner"]


def test_unquote_c_returns_what_follows():
    assert unquote_c('"a\\tb" -> "c"') == ("a\tb", ' -> "c"')


def test_squeue_rows_allow_a_pipe_in_the_job_name():
    row = "7|part01|test1|RUNNING|0:05|9:55|1|c1|2026-11-29T10:00:00|a|b"
    [job] = slurm.parse_squeue(row + "\nnot a row\n")
    assert job == {
        "jobid": "7",
        "partition": "part01",
        "user": "test1",
        "state": "RUNNING",
        "time": "0:05",
        "time_left": "9:55",
        "nodes": "1",
        "nodelist": "c1",
        "start_time": "2026-11-29T10:00:00",
        "name": "a|b",
    }


def test_sacct_rows_carry_the_keys_clients_read():
    row = (
        "3|part01|test1|COMPLETED|2026-11-29T10:00:00|00:00:02|2026-11-29T10:00:01"
        "|1|c1|00:00:01|x|y"
    )
    [job] = slurm.parse_sacct(row)
    assert (job["jobid"], job["state"], job["name"], job["nodes"]) == ("3", "COMPLETED", "x|y", "1")
    assert job["time_left"] == job["termination_time"] == "2026-11-29T10:00:01"
    assert job["elapsed_time"] == "00:00:01" and job["cpu_time"] == "00:00:02"


def test_scontrol_records_keep_values_with_spaces_and_equals():
    line = (
        "NodeName=c1 Arch=x86_64 CfgTRES=cpu=2,mem=1M State=IDLE+DRAIN "
        "Partitions=part01,xfer Reason=Not responding [slurm@2026-11-29T10:00:00] "
        "ActiveFeatures=(null)"
    )
    [record] = slurm.parse_records(line)
    assert record["CfgTRES"] == "cpu=2,mem=1M"
    assert record["Reason"] == "Not responding [slurm@2026-11-29T10:00:00]"
    assert slurm.node_summary(record) == {
        "NodeName": "c1",
        "State": ["IDLE", "DRAIN"],
        "Partitions": ["part01", "xfer"],
        "ActiveFeatures": [],
    }


def test_submitted_job_id_reads_sbatch_parsable_output():
    assert slurm.submitted_job_id("42\n") == "42"
    assert slurm.submitted_job_id("43;cluster\n") == "43"
    assert slurm.submitted_job_id("sbatch: error: nope") is None
