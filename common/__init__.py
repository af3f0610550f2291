"""What the testbuild (harness), the service stack and the suites share.

A leaf: it imports neither harness, stack nor scenarios, so each of them can
depend on it without depending on the others (a unit test keeps it so).
"""
