"""Files of the repository the tests read (the shipped environment file, the
committed compose file), wherever the checkout is."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"
