"""The testbuild's FirecREST v2 service stack (API 2.5.x).

One Flask application, one module per service group (`status`, `ops`,
`transfer`, `compute`), sharing the v1 stack's core: token checks
(`stack.auth`), the parsers of `ls` and Slurm output (`stack.listing`,
`stack.slurm`), command quoting and failure reading (`stack.commands`) and
the S3 staging area (`stack.staging`). What differs is how the cluster is
reached: the user's own login over one pooled SSH connection per user
(`pool.py`), plain commands, credentials from an SSH CA service or static keys.
`python -m firecrest_testbuild.stack --api v2 --config FILE` serves it.
"""

# The API generation answered in F7T-AppVersion: clients (pyfirecrest) adapt
# their request bodies to it.
APP_VERSION = "2.5.6"
