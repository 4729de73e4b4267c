"""`make docs`: the site builds with MkDocs --strict and tools/check_docs.py finds README.md and docs/ sound; and both
fail on what they are there to catch, so that neither can pass by checking nothing."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.paths import ROOT

CHECKER = ROOT / "tools" / "check_docs.py"


def run(*command: str | pathlib.Path, cwd: pathlib.Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_make_docs_builds_the_site_then_checks_readme_and_docs() -> None:
    recipe = run("make", "-n", "docs").stdout
    assert "mkdocs build --strict" in recipe and "tools/check_docs.py" in recipe


def test_the_site_builds_strictly(tmp_path: pathlib.Path) -> None:
    built = run(sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "api.html").is_file() and (tmp_path / "site" / "page.png").is_file()
    # A link from docs/ to another file of the repository is left as written: from site/PAGE.html it reaches the file.
    assert 'href="../bench/BENCHMARKS.md"' in (tmp_path / "site" / "performance.html").read_text()


def test_readme_and_docs_pass_the_checker() -> None:
    checked = run(sys.executable, CHECKER)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    pages = 1 + len(list((ROOT / "docs").glob("*.md")))  # README.md and docs/*.md
    assert checked.stdout.startswith(f"check_docs: {pages} files,") and checked.stdout.rstrip().endswith("all hold")


def test_the_checker_names_each_broken_link_and_command(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    api = os.path.relpath(ROOT / "docs" / "api.md", tmp_path)
    page.write_text(
        "# A page\n"
        "\n"
        f"[gone](gone.md), [an anchor]({api}#no-such-heading), [fine]({api}#errors) and [fine](#a-page).\n"
        "\n"
        "```sh\n"
        "make no-such-target\n"
        ".venv/bin/python -m service --no-such-flag=1\n"
        ".venv/bin/segment photo.jpg\n"
        "cat examples/no-such.toml\n"
        "```\n"
    )
    checked = run(sys.executable, CHECKER, page)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        f"{page}:3: link 'gone.md': no such file or folder {tmp_path / 'gone.md'}",
        f"{page}:3: link '{api}#no-such-heading': docs/api.md has no heading with anchor '#no-such-heading'",
        f"{page}:6: make no-such-target: the Makefile has no target no-such-target",
        f"{page}:7: python -m service has no flag --no-such-flag",
        f"{page}:8: 'photo.jpg': no such file or folder photo.jpg",
        f"{page}:9: 'examples/no-such.toml': no such file or folder examples/no-such.toml",
        "check_docs: 6 problem(s) in 1 files, 4 links, 4 commands",
    ]


def _site(tmp_path: pathlib.Path, link: str) -> subprocess.CompletedProcess[str]:
    """A two-page site with the project's MkDocs settings and hook, its first page ending in `link`."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(f"# A\n\n{link}\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## A heading\n")
    (tmp_path / "beside.txt").write_text("a file of the repository outside docs/\n")
    settings = [
        f"INHERIT: {ROOT / 'mkdocs.yml'}",
        f"hooks: [{ROOT / 'tools' / 'mkdocs_hooks.py'}]",
        "nav: [a.md, b.md]",
    ]
    (tmp_path / "mkdocs.yml").write_text("\n".join(settings) + "\n")
    # No --strict here: the project's own `strict: true` must make every warning fail the build.
    return run(sys.executable, "-m", "mkdocs", "build", cwd=tmp_path)


def test_mkdocs_keeps_a_link_outside_docs_as_written(tmp_path: pathlib.Path) -> None:
    built = _site(tmp_path, "[b](b.md#a-heading) and [beside](../beside.txt)")
    assert built.returncode == 0, built.stderr
    assert 'href="../beside.txt"' in (tmp_path / "site" / "a.html").read_text()


@pytest.mark.parametrize(
    ("link", "warning"),
    [
        ("[b](b.md#no-such-heading)", "does not contain an anchor '#no-such-heading'"),
        ("[c](c.md)", "contains a link 'c.md', but the target is not found among documentation files"),
        ("[gone](../gone.txt)", "link '../gone.txt': no such file"),
    ],
)
def test_mkdocs_strict_fails_on_a_broken_link(tmp_path: pathlib.Path, link: str, warning: str) -> None:
    built = _site(tmp_path, link)
    assert built.returncode == 1 and warning in built.stderr, built.stderr


def test_the_architecture_map_names_only_what_is_there() -> None:
    # Every module and folder docs/architecture.md names (relative to service/, or the repository's own top
    # folders) and every name it gives in backticks after one of them exists: the map cannot quietly fall behind.
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"\b((?:[a-z_]+/)*[a-z_0-9]+\.py|(?:[a-z_]+/)+)(?=[\s`),:;.]|$)", text))
    assert len(named) > 40, named
    modules = {path.name for path in (ROOT / "service").rglob("*.py")}
    missing = []
    for name in sorted(named):
        top = name.split("/", 1)[0]
        base = ROOT if top in ("bench", "tests", "tools", "deploy", "service") else ROOT / "service"
        # A bare module name stands beside the folder named before it (mask/: classes.py, ...).
        if not (base / name).exists() and not ("/" not in name and name in modules):
            missing.append(name)
    assert not missing, missing
    registries = {"KINDS": "backends/kinds.py", "FORMATS": "mask/formats.py", "_PARSERS": "image/probe.py"}
    for name, module in registries.items():
        assert re.search(rf"^{name}\b", (ROOT / "service" / module).read_text(), re.M), (name, module)
    assert "setting(" in (ROOT / "service" / "config.py").read_text()
    assert "ATTACKS" in (ROOT / "bench" / "attacks.py").read_text()
