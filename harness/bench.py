"""`make bench`: how long the environment takes to come up and go, and what it costs.

Figures: warm `up` to all-ready (images built, no containers) with the time
of each stage, `down`, the resident memory of each running container (median
of --runs runs) on the default Slurm generation, the service stack's latency
under concurrent clients and its job turnarounds (harness/bench_stack.py, on
the last run), the warm `up` of every other Slurm generation, and a cold build
of each component image with Docker's layer cache off and the base image
present (--cold-runs runs, default 1: the MinIO compile alone takes
minutes). Runs in environments of its own ('bench-slurm-<version>', free
ports), so it never touches the one `make up` made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from firecrest_testbuild.harness.bench_stack import container_rss_mib, stack_figures
from firecrest_testbuild.harness.bench_stack import report as stack_report
from firecrest_testbuild.harness.bench_v2 import report as v2_report
from firecrest_testbuild.harness.bench_v2 import v2_figures
from firecrest_testbuild.harness.config import (
    DEFAULT_SLURM,
    SLURM_RELEASES,
    parse,
    with_free_ports,
)
from firecrest_testbuild.harness.environment import Environment
from firecrest_testbuild.harness.images import ImageBuilder
from firecrest_testbuild.harness.progress import Progress


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def resident_memory(environment: Environment) -> dict[str, float]:
    """RSS in MiB per node."""
    return {
        container.labels["org.testbuild.node"]: container_rss_mib(container)
        for container in environment.runtime.containers()
    }


def cold_builds(environment: Environment) -> dict[str, float]:
    """Seconds to build each component image with the layer cache off."""
    builder = ImageBuilder(
        environment.client, environment.config.images, Progress(quiet=True), use_cache=False
    )
    specs = [component.image(environment.config) for component in environment.components]
    return {spec.repository: timed(partial(builder.ensure, spec)) for spec in specs}


def median_of(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(s[key] for s in samples), 1) for key in samples[0]}


def bench_environment(state_home: Path, compute_nodes: int, slurm: str) -> Environment:
    name = "bench-slurm-" + slurm.replace(".", "-")
    cluster = {"computeNodes": compute_nodes, "slurm": slurm}
    settings = with_free_ports({"name": name, "cluster": cluster})
    config = parse(yaml.safe_dump(settings, sort_keys=False))
    return Environment(config, state_home, Progress(quiet=True))


def warm_ups(
    environment: Environment, runs: int, transfer_mb: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Median figures of `runs` warm ups and downs; on the last run, the stack's
    figures (v1's and v2's) too unless transfer_mb is None."""
    environment.down()
    ups, stages, downs, memory = [], [], [], []
    stack: dict[str, Any] = {}
    v2: dict[str, Any] = {}
    for run_index in range(runs):
        environment.progress.durations.clear()
        ups.append(timed(environment.up))
        stages.append(dict(environment.progress.durations))
        memory.append(resident_memory(environment))
        if run_index == runs - 1 and transfer_mb is not None:
            stack = stack_figures(environment, transfer_mb)
            v2 = v2_figures(environment, transfer_mb)
        downs.append(timed(environment.down))
    figures = {
        "warm_up_seconds": round(statistics.median(ups), 1),
        "warm_up_stages_seconds": median_of(stages),
        "down_seconds": round(statistics.median(downs), 1),
        "resident_memory_mib": median_of(memory),
    }
    return figures, {"up": ups, "down": downs, "stack": stack, "v2": v2}


def run(runs: int, cold_runs: int, compute_nodes: int, transfer_mb: int) -> dict[str, Any]:
    """The default Slurm generation's figures in full (the stack's included),
    then the warm ups of every other generation."""
    with tempfile.TemporaryDirectory(prefix="testbuild-bench-") as state_home:
        environment = bench_environment(Path(state_home), compute_nodes, DEFAULT_SLURM)
        figures, measured = warm_ups(environment, runs, transfer_mb)
        others = {}
        for slurm in sorted(set(SLURM_RELEASES) - {DEFAULT_SLURM}):
            other = bench_environment(Path(state_home), compute_nodes, slurm)
            others[slurm] = warm_ups(other, runs, None)[0]["warm_up_seconds"]
        cold = [cold_builds(environment) for _ in range(cold_runs)]
    return {
        "runs": runs,
        "cold_runs": cold_runs,
        "compute_nodes": compute_nodes,
        "slurm": DEFAULT_SLURM,
        **figures,
        "warm_up_seconds_other_slurm": others,
        "cold_build_seconds": median_of(cold) if cold else {},
        "stack": measured["stack"],
        "v2": measured["v2"],
        "all": {"up": measured["up"], "down": measured["down"], "cold_build": cold},
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['compute_nodes']} compute nodes; median of {figures['runs']} runs"
        f" ({figures['cold_runs']} for cold builds)",
        f"  warm up to all-ready   {figures['warm_up_seconds']:>7.1f} s (Slurm {figures['slurm']})",
    ]
    lines += [
        f"    {stage:<24} {secs:>6.1f} s"
        for stage, secs in figures["warm_up_stages_seconds"].items()
    ]
    lines += [
        f"  warm up, Slurm {slurm:<8} {secs:>7.1f} s"
        for slurm, secs in figures["warm_up_seconds_other_slurm"].items()
    ]
    lines.append(f"  down                   {figures['down_seconds']:>7.1f} s")
    memory = figures["resident_memory_mib"]
    lines.append(f"  resident memory        {sum(memory.values()):>7.1f} MiB")
    lines += [f"    {node:<24} {mib:>6.1f} MiB" for node, mib in sorted(memory.items())]
    for image, secs in figures["cold_build_seconds"].items():
        lines.append(f"  cold build {image:<12} {secs:>7.1f} s (no layer cache, base present)")
    if figures["stack"]:
        lines += stack_report(figures["stack"])
    lines += v2_report(figures.get("v2", {}))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbuild-bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="warm up/down runs (default 3)")
    parser.add_argument(
        "--cold-runs", type=int, default=1, help="cold builds per image (default 1; 0 skips)"
    )
    parser.add_argument("--compute-nodes", type=int, default=2, help="default 2")
    parser.add_argument(
        "--transfer-mb",
        type=int,
        default=1024,
        help="file size for the storage transfer figures (default 1024; 0 skips)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    figures = run(
        arguments.runs, arguments.cold_runs, arguments.compute_nodes, arguments.transfer_mb
    )
    print(report(figures))
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
