"""Serving stage: what runs inside a server under test beside the app.

The Prometheus timing middleware and the instrumented app it wraps, and the pre-fork
launchers of servers that run as one process. Imported by servers, not by the harness
stages (which name these modules by path or dotted name only).
"""
