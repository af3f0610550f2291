"""The testbuild's SSH CA: signs users' keys with the environment's user CA
after checking their Keycloak token, in the two protocols FirecREST v2's
SSH credential providers speak (`SSHCA`: the DeiC SSH CA's `POST /sign`;
`SSHService`: `POST /api/v1/ssh-keys`).

A peer of the service stack: it imports nothing of the testbuild but common.
"""
