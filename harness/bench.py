"""`make bench`: how long the environment takes to come up and go, and what it costs.

Figures (median of --runs runs): warm `up` to all-ready (images built, no
containers), `down`, a cold build of every image from an empty image cache
with the base image already present, and the resident memory of the running
environment per container. Runs in its own environment ('bench', free ports),
so it never touches the one `make up` made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import parse
from harness.environment import Environment
from harness.images import ImageBuilder
from harness.progress import Progress

MIB = 1024 * 1024


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def resident_memory(environment: Environment) -> dict[str, float]:
    """RSS in MiB per node (cgroup memory usage without the page cache)."""
    usage = {}
    for container in environment.runtime.containers():
        memory = container.stats(stream=False)["memory_stats"]
        details = memory.get("stats", {})
        rss = details.get("rss", details.get("anon", memory.get("usage", 0)))
        usage[container.labels["org.testbuild.node"]] = round(rss / MIB, 1)
    return usage


def cold_build(environment: Environment) -> float:
    """Remove the component images (not the base) and build them again."""
    client = environment.client
    for component in environment.components:
        for image in client.images.list(name=component.image.repository):
            client.images.remove(image.id, force=True)
    builder = ImageBuilder(client, environment.config.images, Progress(quiet=True))
    return timed(lambda: [builder.ensure(c.image) for c in environment.components])


def run(runs: int, compute_nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="testbuild-bench-") as workdir:
        config = parse(
            f"name: bench\nstateDir: {workdir}\n"
            f"cluster: {{sshPort: 0, computeNodes: {compute_nodes}}}\n"
        )
        environment = Environment(config, Path(workdir), Progress(quiet=True))
        environment.down()
        cold = [cold_build(environment) for _ in range(runs)]
        ups, downs, memory = [], [], {}
        for _ in range(runs):
            ups.append(timed(environment.up))
            memory = resident_memory(environment)
            downs.append(timed(environment.down))
    return {
        "runs": runs,
        "compute_nodes": compute_nodes,
        "warm_up_seconds": round(statistics.median(ups), 1),
        "down_seconds": round(statistics.median(downs), 1),
        "cold_build_seconds": round(statistics.median(cold), 1),
        "resident_memory_mib": memory,
        "resident_memory_total_mib": round(sum(memory.values()), 1),
        "all": {"up": ups, "down": downs, "cold_build": cold},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbuild-bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--compute-nodes", type=int, default=2, help="default 2")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args(argv)
    figures = run(arguments.runs, arguments.compute_nodes)
    print(
        f"median of {figures['runs']} runs, {figures['compute_nodes']} compute nodes:\n"
        f"  warm up to all-ready   {figures['warm_up_seconds']:>6.1f} s\n"
        f"  down                   {figures['down_seconds']:>6.1f} s\n"
        f"  cold image build       {figures['cold_build_seconds']:>6.1f} s (base image present)\n"
        f"  resident memory        {figures['resident_memory_total_mib']:>6.1f} MiB "
        + json.dumps(figures["resident_memory_mib"])
    )
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
