"""Site stage 4: page contexts -> markdown text, through the jinja2 templates.

Takes the plain dicts built by `harness.pages.context` and renders `site_templates/*.md.j2`.
Everything printed is escaped for markdown and HTML unless a filter here marked it
safe: text from raw files (URLs, server output, host names) can never become markup.
Templates only loop and apply the filters below; no decisions are made here either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from harness.paths import TEMPLATES_DIR

TEMPLATES = TEMPLATES_DIR
# Characters with a meaning in HTML, Python-Markdown or its extensions. Each becomes a
# numeric entity in one pass (escaping in two passes would break the entities of the
# first), which shows it literally wherever it appears in a line.
_SPECIAL = re.compile(r"[&<>\"'\\`*_{}\[\]()#+!|~^]")


class Md(str):
    """Markdown that is already safe to print as is."""


def escape(value: object) -> Md:
    """Any value as literal text in markdown and HTML (newlines become line breaks)."""
    if isinstance(value, Md):
        return value
    text = _SPECIAL.sub(lambda m: f"&#{ord(m.group())};", "" if value is None else str(value))
    return Md(text.replace("\r", "").replace("\n", "<br>"))


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def rps(x: float | None) -> Md:
    """Requests per second: whole numbers with thousands separators."""
    if _missing(x):
        return Md("—")
    assert x is not None
    return Md(f"{x:,.0f}" if abs(x) >= 100 or x == 0 else f"{x:,.1f}")


def ms(x: float | None) -> Md:
    """Milliseconds with about three significant digits."""
    if _missing(x):
        return Md("—")
    assert x is not None
    digits = 3 if abs(x) < 1 else 2 if abs(x) < 10 else 1 if abs(x) < 100 else 0
    return Md(f"{x:,.{digits}f}")


def pct(x: float | None) -> Md:
    """A share (0.64) as a percentage (64.4 %)."""
    return Md("—") if _missing(x) else Md(f"{x * 100:,.1f} %")  # type: ignore[operator]


def rate(x: float | None) -> Md:
    """Errors per request, as a percentage with three significant digits; 0 stays 0."""
    if _missing(x):
        return Md("—")
    return Md("0") if x == 0 else Md(f"{x * 100:.3g} %")  # type: ignore[operator]


def num(x: float | None) -> Md:
    """A measured quantity with one decimal (CPU %, MiB)."""
    return Md("—") if _missing(x) else Md(f"{x:,.1f}")


def count(x: float | None) -> Md:
    return Md("—") if _missing(x) else Md(f"{int(x):,}")  # type: ignore[arg-type]


def span(low: float | None, high: float | None, unit: str) -> Md:
    """A min-max range in the format of `unit` ('rps', 'ms', 'pct'); "—" when unmeasured."""
    fmt = {"rps": rps, "ms": ms, "pct": pct}[unit]
    if _missing(low) or _missing(high):
        return Md("—")
    if unit == "pct":  # one unit sign for both ends: "53.2–78.5 %"
        return Md(f"{fmt(low).removesuffix(' %')}–{fmt(high)}")
    # Differences can be negative: "to" cannot be mistaken for a minus sign.
    return Md(f"{fmt(low)} to {fmt(high)}" if unit == "ms" else f"{fmt(low)}–{fmt(high)}")


def ci(low: float | None, high: float | None, n: float | None, unit: str) -> Md:
    """A 95 % interval of a mean over `n` repeats; with one repeat, "noise unknown"."""
    if _missing(n) or n < 2:  # type: ignore[operator]
        return Md("noise unknown (1 repeat)") if n == 1 else Md("—")
    return span(low, high, unit)


def prose(value: object) -> Md:
    """Recorded text with its `inline code` shown as code, everything else literal: the
    reasons written beside each server setting use backticks the way markdown does."""
    text = "" if value is None else str(value)
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: no pairs to trust
        return escape(text)
    return Md("".join(code(p) if i % 2 else escape(p) for i, p in enumerate(parts)))


def figure(fig: Mapping[str, str] | None) -> Md:
    """A chart as an image: `![alt](src)`, the alt text escaped, the target encoded."""
    if not fig:
        return Md("")
    return Md(f"![{escape(fig['alt'])}]({href(fig['src'])})")


def code(value: object) -> Md:
    """Inline code: a command line, URL or version, shown literally."""
    return Md(f"<code>{escape(value)}</code>")


def href(path: str) -> Md:
    """A relative link target, percent-encoded so no character can end the link."""
    return Md(quote(path, safe="/#"))


def link(text: object, target: str | None) -> Md:
    """`[text](target)`, or the text alone when there is nothing to link to."""
    return Md(f"[{escape(text)}]({href(target)})") if target else escape(text)


def badges(items: Sequence[Mapping[str, str]] | None) -> Md:
    """Flag badges after a number: ` [title](link){ .flag }` each (attr_list adds the class)."""
    return Md(
        "".join(f" [{escape(b['title'])}]({href(b['link'])}){{ .flag }}" for b in items or ())
    )


def seconds(x: float | None) -> Md:
    if _missing(x):
        return Md("—")
    assert x is not None
    return Md(f"{x:g} s")


def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,  # a missing context key is a bug, not a blank
        finalize=escape,  # every {{ }} is escaped unless a filter returned Md
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        rps=rps,
        ms=ms,
        pct=pct,
        rate=rate,
        count=count,
        num=num,
        ci=ci,
        code=code,
        prose=prose,
        figure=figure,
        href=href,
        seconds=seconds,
        span=span,
        text=escape,
        link=link,
        badges=badges,
    )
    return env


def render(env: jinja2.Environment, template: str, context: Mapping[str, Any]) -> str:
    return env.get_template(template).render(**context)


def render_pages(
    pages: Mapping[str, tuple[str, Mapping[str, Any]]], templates: Path = TEMPLATES
) -> dict[str, str]:
    """{output path: (template name, context)} -> {output path: markdown}."""
    env = environment(templates)
    return {path: render(env, template, ctx) for path, (template, ctx) in sorted(pages.items())}


def write_pages(
    pages: Mapping[str, tuple[str, Mapping[str, Any]]], docs_dir: Path, templates: Path = TEMPLATES
) -> list[Path]:
    """`render_pages`, each page written to `docs_dir/<output path>` (in a build's worker)."""
    written = []
    for rel, text in render_pages(pages, templates).items():
        path = docs_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
