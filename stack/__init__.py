"""The testbuild's FirecREST v1 service stack (API 1.16).

Microservices (status, utilities, compute, tasks, certificator) are separate
modules under `stack.services`, sharing one small core: configuration,
authentication, the endpoint declarations, SSH execution and the task store.
`python -m firecrest_testbuild.stack` serves them behind one address.
"""

API_VERSION = "1.16.1"
STACK_VERSION = "0.1.0"
