"""Raw stage: `raw/<run-id>/…`, the source of truth — the store and its records.

In: what the bench (or an importer) measured. Out: files written atomically and once;
the typed, versioned run and cell records, read back for resuming and for the tables.
Importers turn outside wrk outputs and Prometheus dumps into runs of the same format.
One writer per run (runlock.py); the names of the files the harness writes (names.py).
"""
