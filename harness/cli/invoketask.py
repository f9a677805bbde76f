"""Command-line stage: the invoke `Task` every task in tasks.py is (`cli_task`).

In: a task function and its `help`. Out: an invoke task that also does what invoke
alone does not:

- **`--help` whatever the arguments.** invoke gives a positional argument the next word,
  even `--help`, and then stops on the positional arguments still missing (`invoke
  publish --help` published to a folder named `--help`). Here a positional argument
  that receives `--help` or `-h` stands in for the missing ones, and the task prints
  invoke's own help for itself and does nothing else.
- **One vocabulary.** No automatic short flags (they gave `-r` three meanings); the
  letters of `SHORT` only, each meaning one thing in every task; a renamed option keeps
  its old name as a second long name (`old_names`).
- **The user's defaults** (harness/cli/config.py): an option not given on the command
  line takes the user's default, else the function's. invoke is told every default is
  None, so that "not given" can be told from "given the default value".
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, Program, Task
from invoke.parser import Argument

from harness.cli.config import UserConfig, load_config
from harness.errors import UserError

HELP_WORDS = ("--help", "-h")
# The short flags: one letter, one meaning, in every task that has the option.
SHORT = {"raw": "r", "out": "o", "profile": "p"}


class _Positional(Argument):
    """A positional argument that takes `--help` as a request for help."""

    siblings: Sequence[Argument] = ()

    def set_value(self, value: Any, cast: bool = True) -> None:
        super().set_value(value, cast)
        if value in HELP_WORDS:
            for other in self.siblings:
                if other.value is None:  # missing: the parser would stop on it
                    other.set_value("", cast=False)


class CliTask(Task):
    """An invoke task with help-first positionals, fixed short flags, old names kept,
    and the user's defaults."""

    def __init__(
        self, body: Callable[..., Any], old_names: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        kwargs["auto_shortflags"] = False
        super().__init__(body, **kwargs)
        self.old_names = {k: tuple(v) for k, v in (old_names or {}).items()}
        self.help_texts = dict(self.help)  # invoke pops `help` as it reads it

    @property
    def dashed_name(self) -> str:
        return str(self.name).replace("_", "-")

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        main = opts["names"][0]
        opts["names"] = [main, *self.old_names.get(name, ()), *SHORT.get(main, "")]
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        self.help = dict(self.help_texts)
        args = []
        for arg in super().get_arguments(ignore_unknown_help):
            if arg.positional:
                arg.__class__ = _Positional
            elif self.configurable(arg):
                arg.default = None  # "not given": the user's default or the function's
            args.append(arg)
        positionals = [a for a in args if isinstance(a, _Positional)]
        for arg in positionals:
            arg.siblings = positionals
        return args

    @staticmethod
    def configurable(arg: Argument) -> bool:
        """Every option but lists and on-by-default switches (whose `--no-…` needs the
        default True)."""
        return arg.kind is not list and arg.default is not True and not arg.optional

    def options(self) -> dict[str, type]:
        """The options the user's config may set, by name (underscores), with their kind."""
        return {str(a.name): a.kind for a in self.get_arguments() if self.configurable(a)}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(kwargs.get(str(name)) in HELP_WORDS for name in self.positional):
            self.print_help()
            return None
        try:
            kwargs = self.with_defaults(kwargs)
        except UserError as e:
            raise Exit(f"error: {e}", code=e.exit_code) from None
        return super().__call__(*args, **kwargs)

    def with_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """`given` with each option invoke left at None set to the user's default or the
        function's."""
        signature = inspect.signature(self.body).parameters
        config = user_config(self.body.__module__)
        out = dict(given)
        for name, value in given.items():
            if value is not None or name not in signature:
                continue
            mine = config.default(self.dashed_name, name)
            if mine is not None:
                out[name] = mine
            elif signature[name].default is not inspect.Parameter.empty:
                out[name] = signature[name].default
        return out

    def print_help(self) -> None:
        """invoke's own `invoke --help TASK`."""
        module = sys.modules[self.body.__module__]
        program = Program(namespace=Collection.from_module(module))
        program.run(["invoke", "--help", self.dashed_name], exit=False)


def cli_task(*args: Any, **kwargs: Any) -> Any:
    """`@task` for tasks.py: a `CliTask`."""
    from invoke import task

    return task(*args, klass=CliTask, **kwargs)


@cache
def user_config(module_name: str) -> UserConfig:
    """The user's config, checked against the options of every task in `module_name`."""
    module = sys.modules[module_name]
    tasks = [t for t in vars(module).values() if isinstance(t, CliTask)]
    return load_config({t.dashed_name: t.options() for t in tasks}, cwd=Path.cwd())
