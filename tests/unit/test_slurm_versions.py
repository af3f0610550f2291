"""The Slurm generation of the cluster: the config choice, its image and its slurm.conf."""

from __future__ import annotations

import pytest

from firecrest_testbuild.harness.components.cluster import COMPONENT, image_for, slurm_conf
from firecrest_testbuild.harness.config import DEFAULT_SLURM, SLURM_RELEASES, parse
from firecrest_testbuild.harness.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "env.yaml")
    return caught.value.problems


def test_the_default_is_trixies_24_11():
    assert parse("").cluster.slurm == DEFAULT_SLURM == "24.11"
    assert parse("").cluster.debian_release == "trixie"


@pytest.mark.parametrize("written", ["24.11", '"24.11"', "'24.11'"])
def test_a_version_is_read_whether_quoted_or_not(written: str):
    cluster = parse(f"cluster: {{slurm: {written}}}\n").cluster
    assert cluster.slurm == "24.11"
    assert cluster.debian_release == "trixie"


def test_22_05_written_as_a_number_stays_22_05():
    assert parse("cluster: {slurm: 22.05}\n").cluster.slurm == "22.05"


@pytest.mark.parametrize("written", ["23.02", "25", "latest", '"24.11.5"'])
def test_an_unsupported_version_names_the_supported_ones(written: str):
    [problem] = problems(f"cluster:\n  slurm: {written}\n")
    assert problem.startswith("env.yaml:2: cluster.slurm:")
    assert "'22.05' or '24.11'" in problem


def test_each_version_has_its_image_on_its_debian_release():
    assert image_for("22.05").repository == "testbuild/cluster"
    assert image_for("22.05").debian_release == "bookworm"
    assert image_for("22.05").build_args == ()
    newer = image_for("24.11")
    assert newer.repository == "testbuild/cluster-slurm-24.11"
    assert newer.debian_release == "trixie"
    assert newer.folder == "cluster"
    assert dict(newer.build_args)["EXTRA_PACKAGES"].split() == [
        "slurmrestd",
        "slurm-wlm-jwt-plugin",
    ]


@pytest.mark.parametrize("version", sorted(SLURM_RELEASES))
def test_the_component_runs_the_image_of_the_configured_version(version: str):
    config = parse(f"cluster: {{slurm: '{version}'}}\n")
    assert COMPONENT.image(config) == image_for(version)
    assert COMPONENT.image(config).debian_release == SLURM_RELEASES[version]


@pytest.mark.parametrize("version", sorted(SLURM_RELEASES))
def test_slurm_conf_is_the_common_template_plus_the_versions_lines(version: str):
    cluster = parse(f"cluster: {{slurm: '{version}', computeNodes: 1}}\n").cluster
    lines = slurm_conf(cluster, engine_cpus=2).decode().splitlines()
    assert "AccountingStorageType=accounting_storage/slurmdbd" in lines
    assert "NodeName=c1 CPUs=2 RealMemory=@REAL_MEMORY@ Feature=f7t State=UNKNOWN" in lines
    assert "AccountingStoreFlags=job_script,job_env" in lines
    assert f"# Slurm {version} (Debian {SLURM_RELEASES[version]})" in " ".join(lines)
    assert not any("$" in line for line in lines)


def test_the_versions_slurm_conf_differ_only_in_their_own_lines():
    # (slurmrestd's auth/jwt lines, on by default with 24.11: test_slurmrestd_config.py)
    no_rest = "slurmrestd: {enabled: false}"
    confs = {
        version: slurm_conf(parse(f"cluster: {{slurm: '{version}', {no_rest}}}\n").cluster, 2)
        .decode()
        .splitlines()
        for version in SLURM_RELEASES
    }
    common = [line for line in confs["22.05"] if line in confs["24.11"]]
    assert len(common) > 40
    differing = set(confs["22.05"]) ^ set(confs["24.11"])
    # 24.11 reads users' login environments from a cache (cluster/slurm-24.11.conf)
    assert {line for line in differing if not line.startswith("# ")} == {"GetEnvTimeout=0"}
    assert "GetEnvTimeout=0" in confs["24.11"]
