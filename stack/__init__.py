"""The testbuild's FirecREST service stack: v1 (API 1.16) and v2 (`stack.v2`, API 2.5.6).

v1's microservices (status, utilities, compute, tasks, certificator) are
separate modules under `stack.services`, sharing one small core:
configuration, authentication, the endpoint declarations, SSH execution and
the task store; v2 reuses the core's token checks, output readers and
staging area. `python -m firecrest_testbuild.stack [--api v2]` serves one
generation behind one address.
"""

API_VERSION = "1.16.1"
STACK_VERSION = "0.1.0"
