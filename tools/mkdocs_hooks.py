"""MkDocs hooks (mkdocs.yml, `hooks:`): links from docs/ to the repository's other files.

MkDocs knows only the files under docs/, and reports a link such as `../bench/BENCHMARKS.md` as not found, which
`--strict` makes an error. Such links are meant: with `use_directory_urls: false` each page is site/PAGE.html, beside
site/ as docs/PAGE.md is beside docs/, so the link as written reaches the repository's file from the site built in
the checkout, as it does from the page on GitHub. So this hook checks that each such file exists (a missing one is a
warning, so an error under --strict; tools/check_docs.py checks them too, anchors included), and keeps MkDocs' own
check off them by prefixing them with a scheme of their own while MkDocs reads the page, then takes the prefix out of
the HTML it writes. Links between pages are left to MkDocs, which checks them and their anchors.
"""

from __future__ import annotations

import logging
import pathlib

from check_docs import find_links, is_external  # tools/, which MkDocs puts on sys.path while it loads this file
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.plugins.repo_links")  # under "mkdocs", so that --strict counts its warnings
PREFIX = "repo-file:"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    docs = pathlib.Path(config.docs_dir).resolve()
    folder = (docs / page.file.src_uri).parent
    for link in reversed(find_links(markdown)):  # from the end, so that the offsets before it stay right
        path = link.target.partition("#")[0]
        if not path or is_external(link.target) or link.target.startswith("/"):
            continue
        target = (folder / path).resolve()
        if target.is_relative_to(docs):
            continue
        if not target.exists():
            log.warning(
                f"Doc file '{page.file.src_uri}', line {link.line}: link '{link.target}': no such file {target}"
            )
        markdown = markdown[: link.start] + PREFIX + markdown[link.start :]
    return markdown


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return html.replace(f'="{PREFIX}', '="')
