"""Site stage: raw/ -> docs/ -> site/ (the build, its caches and worker pool, the engine, publish).

In: a raw/ tree and the hand-written docs/. Out: the generated pages and downloads in
docs/, one generated config, and the static site built from it by mkdocs (or Zensical)
in site/. Starts no process but the engine and its own worker processes; measures
nothing. A raw file it cannot read is left out and shown as unreadable (rawcheck.py),
never the end of the build.
"""
