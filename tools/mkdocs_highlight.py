"""MkDocs hook (mkdocs.yml, `hooks:`): the stylesheet of the code highlighted at build time.

Markdown's codehilite extension has Pygments mark up each fenced block as the page is built, so the site needs no
script from a CDN (these machines cannot reach one); this writes the colours those marks take, from Pygments' own
style, into the built site, where mkdocs.yml's `extra_css` links it.
"""

from __future__ import annotations

import pathlib

from mkdocs.config.defaults import MkDocsConfig
from pygments.formatters import HtmlFormatter

STYLESHEET = "css/pygments.css"
STYLE = "friendly"


def on_post_build(config: MkDocsConfig) -> None:
    path = pathlib.Path(config.site_dir) / STYLESHEET
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HtmlFormatter(style=STYLE).get_style_defs(".codehilite") + "\n")
