"""Matrix stage: profiles and command-line options -> a validated `Matrix` of cells.

In: `profiles.toml` (or `--profile-file`) and the options of `invoke bench`. Out: frozen
`Matrix`/`Cell` records with every derived fact (thread clamp, effective connections,
backlog, open-files limit, wrk time limit, cell key) computed once; the registries of
servers, apps and workloads; the host plan of a run. No I/O beyond reading profiles,
which are checked against their schema (schema.py).
"""
