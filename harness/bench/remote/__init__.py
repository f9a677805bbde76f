"""Bench stage, remote hosts: the same cells with the server and wrk on other machines.

In: a host plan (SSH destinations, key policy) and the matrix. Out: prepared hosts
(code and virtualenv uploaded, facts read) and the cell sequence's host operations done
by an agent on each machine, whose outputs come home into the local raw/ tree.
"""
