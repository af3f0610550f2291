"""Conformance suites for FirecREST v1 deployments.

Written from the API description and the tutorial only: they talk to a
target over HTTP (and, where it grants it, check the truth behind the API
over SSH and S3), and never look inside the implementation they judge.
"""

SUITE_VERSION = "0.1.0"
