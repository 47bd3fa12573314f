"""Sandboxed Jinja2 environments: a channel's templates, overridable file by file, output escaped its way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from bridge.render import escape

__all__ = ["Templates"]


def _finalizer(escaper: Callable[[str], str] | None) -> Callable[[Any], Any]:
    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if escaper is None or isinstance(value, escape.Url | int | float):
            return value  # our own sanitised links and numbers are safe as they are
        return escaper(str(value))

    return finalize


class Templates:
    """Renders named templates from a channel's `directory`; a file in `override_dir` replaces the one of that name.

    Every `{{ … }}` output goes through `escaper` (or HTML autoescaping with `html=True`), so a template can
    never forget to escape and alert text can never become markup.
    """

    def __init__(
        self,
        directory: Path,
        override_dir: Path | None = None,
        *,
        escaper: Callable[[str], str] | None = None,
        html: bool = False,
    ) -> None:
        search = [str(override_dir)] if override_dir else []
        search.append(str(directory))
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(search),
            autoescape=html,
            finalize=_finalizer(escaper),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["one_line"] = escape.one_line

    def render(self, name: str, **variables: Any) -> str:
        return self.env.get_template(name).render(**variables)
