"""Bench stage: a `Matrix` -> cells measured with wrk against real servers -> raw/<run-id>/.

In: the matrix and the raw store. Out: one sidecar per cell (`ok` or `failed` with its
reason) beside wrk's verbatim output, the Lua report, the samples and the server's log.
The only stage that starts processes (servers, wrk, nginx, agents on remote hosts).
"""
