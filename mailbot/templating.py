"""Templates to customers and staff, rendered from jinja2 templates: the operator's, else ours."""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from types import CodeType
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup

from mailbot.layout import UNBROKEN, Links, html_source, lay_out, unbroken
from mailbot.procedure.calendar import day_words, when_words

LAYOUT = "_layout.html.j2"  # the one HTML frame of every letter to a person


def quote(text: str) -> str:
    """TEXT as a quote in a letter: each line under "> " (the layout makes it a blockquote)."""
    return "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())


def packaged_templates() -> Path:
    """Our templates: inside the package in a wheel, at the top of a checkout (editable)."""
    here = Path(__file__).resolve().parent
    inside, checkout = here / "templates", here.parent / "templates"
    return checkout if checkout.is_dir() and not inside.is_dir() else inside


class Compiled(BytecodeCache):
    """Templates compiled once per process, and the names each uses, by source checksum.

    Every start-up renders every letter (the check), and a replay starts mailbot thousands of
    times in one process; an edited template has another checksum, so it is compiled again.
    """

    def __init__(self) -> None:
        self.code: dict[tuple[str, str], CodeType] = {}
        self.names: dict[str, tuple[dict[str, int], list[str]]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        bucket.code = self.code.get((bucket.key, bucket.checksum))

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self.code[(bucket.key, bucket.checksum)] = bucket.code

    def names_in(
        self, env: Environment, source: str, name: str, filename: str | None
    ) -> tuple[dict[str, int], list[str]]:
        """What a template names without setting it (with the first line), what it includes."""
        checksum = self.get_source_checksum(source)
        if checksum not in self.names:
            parsed = env.parse(source, name, filename)
            try:
                free = meta.find_undeclared_variables(parsed)
            except TemplateSyntaxError as exc:  # an unknown filter or test, say: say where
                exc.name, exc.filename = name, filename
                raise
            lines = {n.name: n.lineno for n in reversed(list(parsed.find_all(nodes.Name)))}
            self.names[checksum] = (
                {n: line for n, line in lines.items() if n in free},
                [t for t in meta.find_referenced_templates(parsed) if t is not None],
            )
        return self.names[checksum]


COMPILED = Compiled()  # the one process-wide cache: content-addressed, so never stale


class TemplateFault(Exception):
    """A letter's template is missing or broken; the message names it, on one line."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(f"{template}: {problem}")
        self.template, self.problem = template, problem


class Templates:
    """Renders `KIND.txt.j2` for a letter kind; a letter to a person also as HTML.

    Templates in OWN (the operator's `[letters] templates_dir`) come first; any template
    missing there is the packaged one. A letter's HTML is its text laid out (mailbot/layout.py)
    in the one shared `_layout.html.j2`, so the two parts always say the same thing.
    """

    def __init__(
        self,
        timezone: str,
        own: Path | None = None,
        compiled: Compiled = COMPILED,
        links: Mapping[str, str] | None = None,
    ) -> None:
        """LINKS: the words letters may name (a web or email address, a phone number), each
        with the href its HTML links it to."""
        self.zone = ZoneInfo(timezone)
        self.directories = [*([own] if own is not None else []), packaged_templates()]
        self.loader = ChoiceLoader([FileSystemLoader(d) for d in self.directories])
        self.env = Environment(
            loader=self.loader,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            auto_reload=False,  # templates are read once: no stat() of the file per letter
            bytecode_cache=compiled,
        )
        self.compiled = compiled
        self.env.filters["when"] = self.when
        self.env.filters["day"] = self.day
        self.env.filters["quote"] = quote
        self.links = Links(links or {})

    def when(self, moment: datetime) -> str:
        return unbroken(when_words(moment, self.zone))

    def day(self, moment: datetime | date) -> str:
        return unbroken(day_words(moment, self.zone))

    def render(self, kind: str, context: dict[str, Any]) -> str:
        """The plain text of letter KIND, as its template writes it (a letter to staff)."""
        return self._source(kind, context).replace(UNBROKEN, " ")

    def _source(self, kind: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"{kind}.txt.j2").render(context)

    def letter(self, kind: str, context: dict[str, Any]) -> tuple[str, str]:
        """Letter KIND to a person: its text part (72 columns) and its HTML part."""
        source = self._source(kind, context)
        for words in self.links.unbroken:  # a phone number stays on one line
            source = source.replace(words, unbroken(words))
        laid = lay_out(source, self.links)
        body, case = laid.html, context.get("case")
        if case is not None:  # a reference is one word: "CMP-2026-" never ends a line
            body = body.replace(case.ref, f'<span class="ref">{case.ref}</span>')
        html = self.env.get_template(LAYOUT).render(context, title=laid.title, body=Markup(body))
        return laid.text, html_source(html)

    def check(self, kind: str, context: dict[str, Any], person: bool = False) -> None:
        """Render letter KIND once with CONTEXT (PERSON: as a letter to a person, with its
        HTML), as at start-up; TemplateFault if it fails.

        Besides rendering, every variable a template (or one it includes) names must be in
        CONTEXT, so that a branch the sample does not take cannot fail later on real mail.
        """
        try:
            self._names_only_known(f"{kind}.txt.j2", context)
            self._no_html_of_its_own(kind)
            if person:
                self._names_only_known(LAYOUT, context | {"title": "", "body": ""})
                self.letter(kind, context)
            else:
                self.render(kind, context)
        except TemplateFault:
            raise
        except TemplateNotFound as exc:
            looked = " or ".join(str(d) for d in self.directories)
            raise TemplateFault(str(exc), f"not found in {looked}") from None
        except TemplateSyntaxError as exc:
            where = f"{exc.filename or exc.name}, line {exc.lineno}"
            raise TemplateFault(where, exc.message or "syntax error") from None
        except Exception as exc:
            problem = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise TemplateFault(_template_at_fault(exc, f"{kind}.txt.j2"), problem) from None

    def _no_html_of_its_own(self, kind: str) -> None:
        """An operator's KIND.html.j2 (read before issue 16) would be ignored: say so."""
        own = self.directories[0] / f"{kind}.html.j2"
        if len(self.directories) > 1 and own.is_file():
            raise TemplateFault(
                str(own),
                f"is no longer read: a letter's HTML is its {kind}.txt.j2 laid out in "
                f"{LAYOUT} (remove it, and reword {kind}.txt.j2 or {LAYOUT})",
            )

    def _names_only_known(self, name: str, context: dict[str, Any]) -> None:
        source, filename, _ = self.loader.get_source(self.env, name)
        free, included = self.compiled.names_in(self.env, source, name, filename)
        unknown = sorted(
            free.keys() - context.keys() - self.env.globals.keys(), key=free.__getitem__
        )
        if unknown:
            where = f"{filename or name}, line {free[unknown[0]]}"
            raise TemplateFault(where, f"unknown variable(s) {', '.join(unknown)}")
        for other in included:
            self._names_only_known(other, context)


def _template_at_fault(exc: BaseException, default: str) -> str:
    """The template file and line where rendering raised (jinja2 puts them in the traceback)."""
    frames: Iterator[traceback.FrameSummary] = reversed(traceback.extract_tb(exc.__traceback__))
    found = next((f for f in frames if f.filename.endswith(".j2")), None)
    return f"{found.filename}, line {found.lineno}" if found is not None else default
