"""The suites run with the plugin in scenarios/plugin.py (registered as the
pytest11 entry point `firecrest-testbuild` when this project is installed)."""
