"""Sandboxed Jinja2 environments: package templates, overridable file by file, escaping per platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from bridge.render import escape

__all__ = ["DEFAULT_TEMPLATES", "Flavour", "Templates"]

DEFAULT_TEMPLATES = Path(__file__).parent / "templates"

# How `{{ … }}` output is escaped: the template can never forget, and alert text can never become markup.
Flavour = Literal["slack", "discord", "html", "console", "text"]
_ESCAPERS: dict[str, Callable[[str], str]] = {
    "slack": escape.slack,
    "discord": escape.discord,
    "console": escape.terminal,
}


def _finalizer(escaper: Callable[[str], str] | None) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if escaper is None or isinstance(value, escape.Url | int | float):
            return value  # our own sanitised links and numbers are safe as they are
        return escaper(str(value))

    return finalize


class Templates:
    """Renders named templates for one flavour; a file in `override_dir` replaces the package's one of that name."""

    def __init__(self, flavour: Flavour, override_dir: Path | None = None) -> None:
        search = [str(override_dir)] if override_dir else []
        search.append(str(DEFAULT_TEMPLATES))
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(search),
            autoescape=flavour == "html",
            finalize=_finalizer(_ESCAPERS.get(flavour)),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["one_line"] = escape.one_line

    def render(self, name: str, **variables: Any) -> str:
        return self.env.get_template(name).render(**variables)
