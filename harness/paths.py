"""Where the testbuild's own files are, installed or in a checkout.

Image folders, cluster templates and the suites are package data of
`firecrest_testbuild`, so these paths hold for a wheel installed anywhere as
well as for the repository (whose firecrest_testbuild/ links to the
top-level folders).
"""

from __future__ import annotations

from pathlib import Path

import firecrest_testbuild

PACKAGE = Path(firecrest_testbuild.__file__).parent
IMAGES = PACKAGE / "images"
CLUSTER = PACKAGE / "cluster"
SCENARIOS = PACKAGE / "scenarios"
