"""The FirecREST testbuild, installed under one name.

The repository keeps its parts in top-level folders (harness/, scenarios/,
stack/, common/, images/, cluster/); the links in this folder give them
their installed, namespaced names (firecrest_testbuild.harness, ...), so a
user's site-packages never sees generic names like `harness` or `stack`.
"""
