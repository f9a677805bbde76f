"""What a user can cause and fix: one base class for every such error (asv's `UserError`).

Every error a user can cause — a bad option or profile value, a file that cannot be
read, a host that cannot be reached, a run that cannot be continued — derives from
`UserError`, and its message is one line naming the option, file or line and the fix.
`tasks.py` turns it into that line and exit code 2 in one place; anything else is a
bug and keeps its traceback. Standard library only: the remote agents import it too.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; `str()` is one line saying what, where and how."""

    exit_code = 2
