"""Serving stage: what runs inside a server under test, beside the app.

In: an app named by the environment (`WSGI_BASELINE_APP`) or on a launcher's command
line. Out: the app timed by the Prometheus middleware (`/metrics`), and the pre-fork
launchers of servers that run as one process. Imported by servers, never by the
harness stages, which name these modules by path or dotted name only.
"""
