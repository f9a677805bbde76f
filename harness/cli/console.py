"""Command-line stage: the rich console a task prints to -> no wrapping when piped.

In: a stream (stderr by default). Out: a rich `Console`. In a terminal, rich's own
(colours, the terminal's width). Piped or redirected, rich would wrap every line at 80
columns — a run's output path broken across two lines — so there it gets a width no line
reaches, soft wrapping (a line is printed whole) and no colour codes.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

PIPED_WIDTH = 10_000


def console_for(stream: TextIO | None = None) -> Console:
    stream = stream if stream is not None else sys.stderr
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=PIPED_WIDTH, soft_wrap=True, no_color=True,
                   highlight=False)  # fmt: skip
