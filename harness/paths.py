"""Where the repository's own files are (images/, cluster/, scenarios/)."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
IMAGES = REPOSITORY / "images"
CLUSTER = REPOSITORY / "cluster"
COMPOSE = REPOSITORY / "compose"
SCENARIOS = REPOSITORY / "scenarios"
