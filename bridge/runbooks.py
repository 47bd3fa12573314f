"""GET /runbooks: the runbooks shipped in the package, as one HTML page with an anchor per alert."""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files

import markdown
from aiohttp import web

__all__ = ["PATH", "add_routes", "render_runbooks"]

PATH = "/runbooks"
# Inline styles only: the page loads nothing from elsewhere.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
code, pre {{ font: 13px ui-monospace, monospace; background: #f4f4f4; }}
pre {{ padding: .6rem; overflow-x: auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; }}
h2 {{ border-top: 1px solid #ddd; padding-top: 1rem; }} :target {{ background: #fff6d0; }}
</style></head>
<body>
{body}
</body></html>
"""


@cache
def render_runbooks() -> str:
    """The packaged runbooks.md as HTML; each heading gets the id GitHub would give it (`#llmproxydown`)."""
    text = files("bridge").joinpath("runbooks.md").read_text(encoding="utf-8")
    body = markdown.markdown(text, extensions=["toc", "tables", "fenced_code"], output_format="html")
    return _PAGE.format(title=html.escape("llm-monitoring runbooks"), body=body)


async def _runbooks(request: web.Request) -> web.Response:
    return web.Response(
        text=render_runbooks(),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"},
    )


def add_routes(app: web.Application) -> None:
    """Serve the runbooks at PATH (and PATH/); no auth needed, they hold no secret (see OPEN_PATHS in app.py)."""
    app.router.add_get(PATH, _runbooks)
    app.router.add_get(f"{PATH}/", _runbooks)
