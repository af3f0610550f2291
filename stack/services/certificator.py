"""The certificator service: in this stack it signs in-process (common.certificates)
for the services that run commands; it serves no path of its own."""

from __future__ import annotations

from firecrest_testbuild.stack.services import Service

SERVICE = Service(name="certificator", blueprint=None)
