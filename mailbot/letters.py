"""Letters to customers and staff, rendered from the jinja2 templates in templates/."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Letters:
    """Renders `KIND.txt.j2` (and `KIND.html.j2` when there is one) for a letter kind."""

    def __init__(self, timezone: str, directory: Path = TEMPLATES_DIR) -> None:
        self.zone = ZoneInfo(timezone)
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            auto_reload=False,  # templates are read once: no stat() of the file per letter
        )
        self.env.filters["when"] = self.when

    def when(self, moment: datetime) -> str:
        """A moment as a customer in the UK reads it: 'Monday 23 November 2026 at 16:00'."""
        local = moment.astimezone(self.zone)
        return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"

    def day(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        return f"{local:%A} {local.day} {local:%B %Y}"

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str | None]:
        """The plain text and, if a template exists, the HTML of letter KIND."""
        text = self.env.get_template(f"{kind}.txt.j2").render(context)
        try:
            html_template = self.env.get_template(f"{kind}.html.j2")
        except TemplateNotFound:
            return text, None
        return text, html_template.render(context)
