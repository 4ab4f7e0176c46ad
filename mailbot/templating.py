"""Templates to customers and staff, rendered from jinja2 templates: the operator's, else ours."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from datetime import datetime
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
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.bccache import Bucket

from mailbot.procedure.calendar import day_words, when_words


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
    """Renders `KIND.txt.j2` (and `KIND.html.j2` when there is one) for a letter kind.

    Templates in OWN (the operator's `[letters] templates_dir`) come first; any template
    missing there is the packaged one. A letter's HTML goes only with the text beside it.
    """

    def __init__(
        self, timezone: str, own: Path | None = None, compiled: Compiled = COMPILED
    ) -> None:
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
        self.html: dict[str, Template | None] = {}  # each letter kind's HTML, if it has one
        self.env.filters["when"] = self.when

    def when(self, moment: datetime) -> str:
        return when_words(moment, self.zone)

    def day(self, moment: datetime) -> str:
        return day_words(moment, self.zone)

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str | None]:
        """The plain text of letter KIND and, if there is one beside it, its HTML."""
        text = self.env.get_template(f"{kind}.txt.j2")
        if kind not in self.html:  # looked for once, by the start-up check: no stat() per letter
            self.html[kind] = self._html_beside(kind, text)
        html = self.html[kind]
        return text.render(context), html.render(context) if html is not None else None

    def _html_beside(self, kind: str, text: Template) -> Template | None:
        try:
            html = self.env.get_template(f"{kind}.html.j2")
        except TemplateNotFound:
            return None
        beside = Path(html.filename or "").parent == Path(text.filename or "").parent
        return html if beside else None  # the operator reworded the text: ours says our words

    def check(self, kind: str, context: dict[str, Any]) -> None:
        """Render letter KIND once with CONTEXT, as at start-up; TemplateFault if it fails.

        Besides rendering, every variable a template (or one it includes) names must be in
        CONTEXT, so that a branch the sample does not take cannot fail later on real mail.
        """
        try:
            for name in (f"{kind}.txt.j2", f"{kind}.html.j2"):
                self._names_only_known(name, context, optional=name.endswith(".html.j2"))
            self.render(kind, context)
            self._html_has_its_text(kind)
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

    def _html_has_its_text(self, kind: str) -> None:
        """The operator's KIND.html.j2 goes with their KIND.txt.j2; alone it would be ignored."""
        own = self.directories[0] / f"{kind}.html.j2"
        if len(self.directories) > 1 and self.html[kind] is None and own.is_file():
            raise TemplateFault(
                str(own), f"needs {kind}.txt.j2 beside it (HTML goes with its text)"
            )

    def _names_only_known(self, name: str, context: dict[str, Any], optional: bool) -> None:
        try:
            source, filename, _ = self.loader.get_source(self.env, name)
        except TemplateNotFound:
            if optional:
                return
            raise
        free, included = self.compiled.names_in(self.env, source, name, filename)
        unknown = sorted(
            free.keys() - context.keys() - self.env.globals.keys(), key=free.__getitem__
        )
        if unknown:
            where = f"{filename or name}, line {free[unknown[0]]}"
            raise TemplateFault(where, f"unknown variable(s) {', '.join(unknown)}")
        for other in included:
            self._names_only_known(other, context, optional=False)


def _template_at_fault(exc: BaseException, default: str) -> str:
    """The template file and line where rendering raised (jinja2 puts them in the traceback)."""
    frames: Iterator[traceback.FrameSummary] = reversed(traceback.extract_tb(exc.__traceback__))
    found = next((f for f in frames if f.filename.endswith(".j2")), None)
    return f"{found.filename}, line {found.lineno}" if found is not None else default
