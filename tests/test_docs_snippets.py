"""Every code block of the README and the docs runs as pasted (issue 14).

The blocks are extracted from ``README.rst``, ``docs/**/*.rst`` and ``docs/**/*.md``;
one test per block, named ``file:line``:

* ``python``: compiled, checked for names used but never defined or imported (in
  function bodies too, which running does not reach), then run in a fresh namespace
  (``__name__ == "__snippet__"``, so ``if __name__ == "__main__":`` servers do not
  start) in a temporary working directory, with ``WSGISESSION_SECRET_KEY`` set to a
  generated secret. A block that defines ``test_*`` functions is a test module: pytest
  runs it in a subprocess, and its tests must pass. A block that configures process-wide
  state (Django's settings, ``logging.config``) runs in a subprocess of its own. Django
  settings fragments are plain Python and run like any other block.
* ``ini``: parsed with :mod:`configparser`; each ``[filter:…]`` section is loaded with
  PasteDeploy and applied to an application, and a ``main`` application, pipeline or
  composite whose every ``use`` resolves (a complete file) is loaded whole.
  ``%(session_secret)s`` and ``%(session_old_secret)s`` are given as PasteDeploy's
  global configuration, as ``pserve file.ini session_secret=...`` would.
* ``sql``: run against an in-memory SQLite database.
* ``console``, ``shell``, ``bash``, ``sh``, ``text``, ``http``: not executable, accepted.

Any other language fails, and so does a block without a language (an RST ``::``
literal block or a Markdown fence without an info string, an indented Markdown code
block).
"""

from __future__ import annotations

import ast
import builtins
import configparser
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import secrets
import sqlite3
import subprocess
import symtable
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Languages that are shown, never run.
NOT_EXECUTABLE = frozenset({"console", "shell", "bash", "sh", "text", "http"})
EXECUTABLE = frozenset({"python", "ini", "sql"})
#: What a PasteDeploy file may take from its global configuration (``pserve x=y``).
PASTE_GLOBALS = ("session_secret", "session_old_secret")
#: Blocks that change process-wide state run in a subprocess.
PROCESS_WIDE = re.compile(r"settings\.configure\(|django\.setup\(|logging\.config\.")
TIMEOUT = 120
#: The module name a block runs under: not ``__main__``, so ``if __name__ ==
#: "__main__":`` servers do not start.
SNIPPET_MODULE = "__snippet__"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based: the directive or the opening fence
    language: str | None
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


# -- extraction -------------------------------------------------------------------------

_RST_CODE = re.compile(
    r"^(?P<indent>\s*)\.\.\s+(?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$"
)
_RST_OPTION = re.compile(r"^\s*:[\w-]+:")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _body(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines indented deeper than ``indent`` from ``start`` on (blank lines
    included), and the index after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    return body, end


def rst_blocks(path: Path) -> list[Block]:
    """``code-block``/``code``/``sourcecode`` directives, and ``::`` literal blocks (no
    language). Doctest paragraphs (``>>>``) count as a block of language ``doctest``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    previous_blank = True
    while i < len(lines):
        line = lines[i]
        match = _RST_CODE.match(line)
        stripped = line.strip()
        if match:
            indent = len(match["indent"])
            j = i + 1
            while j < len(lines) and lines[j].strip() and _RST_OPTION.match(lines[j]):
                j += 1
            body, end = _body(lines, j, indent)
            code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
            blocks.append(Block(path, i + 1, match["lang"] or None, code))
            i, previous_blank = end, True
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            body, end = _body(lines, i + 1, _indent(line))
            if any(b.strip() for b in body):
                code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
                blocks.append(Block(path, i + 1, None, code))
                i, previous_blank = end, True
                continue
        if stripped.startswith(">>> ") and previous_blank:
            blocks.append(Block(path, i + 1, "doctest", stripped + "\n"))
        previous_blank = not stripped
        i += 1
    return blocks


_MYST_CODE_DIRECTIVES = ("{code-block}", "{code}", "{sourcecode}")


def md_blocks(path: Path) -> list[Block]:
    """Fenced and indented code blocks, as MyST's parser (markdown-it) sees them.
    MyST directives (a fence whose info starts with ``{``) other than ``{code-block}``
    are not code."""
    text = path.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type not in ("fence", "code_block") or token.map is None:
            continue
        line = token.map[0] + 1
        if token.type == "code_block":
            blocks.append(Block(path, line, None, token.content))
            continue
        info = token.info.strip()
        code = token.content
        if info.startswith("{"):
            directive, _, language = info.partition(" ")
            if directive not in _MYST_CODE_DIRECTIVES:
                continue
            body = code.splitlines()
            while body and _RST_OPTION.match(body[0]):
                body.pop(0)
            code = "\n".join(body) + "\n"
            info = language.strip()
        language = info.split()[0] if info else None
        blocks.append(Block(path, line, language, code))
    return blocks


def sources() -> list[Path]:
    docs = [p for p in sorted(DOCS.rglob("*")) if "_build" not in p.relative_to(DOCS).parts]
    return (
        [ROOT / "README.rst"]
        + [p for p in docs if p.suffix == ".rst"]
        + [p for p in docs if p.suffix == ".md"]
    )


def all_blocks() -> list[Block]:
    found: list[Block] = []
    for path in sources():
        found += rst_blocks(path) if path.suffix == ".rst" else md_blocks(path)
    return found


BLOCKS = all_blocks()


# -- python -------------------------------------------------------------------------------


def undefined_names(code: str, filename: str) -> list[str]:
    """Names a block uses that are neither defined in it, imported, nor builtins: the
    "imports included" rule, checked in function bodies too."""
    top = symtable.symtable(code, filename, "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    defined |= {s.get_name() for s in top.get_symbols() if s.is_namespace()}
    known = defined | set(dir(builtins)) | {"__file__"}
    missing: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if not symbol.is_referenced() or name in known:
                continue
            if table.get_type() == "module" or symbol.is_global():
                missing.add(name)
        for child in table.get_children():
            visit(child)

    visit(top)
    return sorted(missing)


def defines_tests(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name.lower().startswith("test")
        for node in tree.body
    )


def _subprocess_env(secret: str) -> dict[str, str]:
    env = dict(os.environ, WSGISESSION_SECRET_KEY=secret)
    # The snippet imports the package as an installed user would; the checkout comes
    # first so that an uninstalled checkout works too.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def _run(argv: list[str], cwd: Path, secret: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_subprocess_env(secret),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _logging_state() -> list[tuple[logging.Logger, list[logging.Handler], int, bool, bool]]:
    loggers = [logging.getLogger(), logging.getLogger("wsgisession")]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]


def run_python(block: Block, tmp_path: Path, secret: str) -> None:
    try:
        tree = ast.parse(block.code, block.id)
    except SyntaxError as exc:
        pytest.fail(f"{block.id}: not valid Python: {exc}")
    missing = undefined_names(block.code, block.id)
    assert not missing, f"{block.id}: names used but not defined or imported: {missing}"

    if defines_tests(tree):
        module = tmp_path / "test_snippet.py"
        module.write_text(block.code, encoding="utf-8")
        (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        done = _run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name],
            tmp_path,
            secret,
        )
        assert done.returncode == 0, f"{block.id}: its tests fail:\n{done.stdout}{done.stderr}"
        return
    if PROCESS_WIDE.search(block.code):
        script = tmp_path / "snippet.py"
        script.write_text(block.code, encoding="utf-8")
        runner = (
            "import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location({SNIPPET_MODULE!r}, sys.argv[1]); "
            "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(module)"
        )
        done = _run([sys.executable, "-c", runner, script.name], tmp_path, secret)
        assert done.returncode == 0, f"{block.id} fails:\n{done.stdout}{done.stderr}"
        return
    # A real module from a real file, as a pasted file would be: frameworks look at
    # their caller's module (Pyramid's Configurator) and source line (view_config).
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(SNIPPET_MODULE, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    state = _logging_state()
    sys.modules[SNIPPET_MODULE] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(SNIPPET_MODULE, None)
        for logger, handlers, level, propagate, disabled in state:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


# -- ini ----------------------------------------------------------------------------------

_PASTE_KINDS = ("app", "filter", "pipeline", "composite", "filter-app")


def _kind_and_name(section: str) -> tuple[str, str] | None:
    kind, sep, name = section.partition(":")
    if not sep or kind not in _PASTE_KINDS:
        return None
    return kind, name.strip()


def _resolvable(use: str) -> bool:
    """Whether a ``use =`` value can be loaded here (an installed distribution, an
    importable module), without loading it."""
    scheme, _, rest = use.strip().partition(":")
    if scheme == "egg":
        dist = rest.partition("#")[0]
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True
    if scheme == "call":
        module = rest.partition(":")[0]
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False
    return False


def _complete(parser: configparser.ConfigParser, sections: dict[tuple[str, str], str]) -> bool:
    """A ``main`` exists and everything it refers to is in the file and loadable."""
    by_name = {name: kind for kind, name in sections}
    if by_name.get("main") not in ("app", "pipeline", "composite", "filter-app"):
        return False
    for (kind, _name), section in sections.items():
        options = parser[section]
        if "use" in options and not _resolvable(options["use"]):
            return False
        if kind == "pipeline":
            names = options.get("pipeline", "").split()
            if not names or any(name not in by_name for name in names):
                return False
        for key in ("filter-with", "next"):
            if key in options and options[key].strip() not in by_name:
                return False
    return True


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def run_ini(block: Block, tmp_path: Path, secret: str) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        parser.read_string(block.code, source=block.id)
    except configparser.Error as exc:
        pytest.fail(f"{block.id}: not a valid ini file: {exc}")
    sections = {
        found: section
        for section in parser.sections()
        if (found := _kind_and_name(section)) is not None
    }
    if not sections:
        return
    from paste.deploy import loadapp, loadfilter

    ini = tmp_path / "snippet.ini"
    ini.write_text(block.code, encoding="utf-8")
    global_conf = {name: secrets.token_urlsafe(32) for name in PASTE_GLOBALS}
    global_conf["session_secret"] = secret
    uri = f"config:{ini}"
    for kind, name in sections:
        if kind == "filter":
            make_filter = loadfilter(uri, name=name, global_conf=dict(global_conf))
            filtered = make_filter(_hello)
            assert callable(filtered), f"{block.id}: [filter:{name}] gives no WSGI app"
    if _complete(parser, sections):
        app = loadapp(uri, name="main", global_conf=dict(global_conf))
        assert callable(app), f"{block.id}: main is not a WSGI application"
        return
    # An application that cannot be loaded here (egg:myproject): its session.* settings
    # must still build the Pyramid session factory they are for.
    values = configparser.ConfigParser(defaults=global_conf, strict=True)
    values.read_string(block.code, source=block.id)
    for (kind, name), section in sections.items():
        settings = {
            key: value for key, value in values[section].items() if key.startswith("session.")
        }
        if kind == "app" and settings:
            from wsgisession.adapters.pyramid import PyramidSessionFactory

            try:
                PyramidSessionFactory.from_settings(settings)
            except ValueError as exc:
                pytest.fail(f"{block.id}: [app:{name}]'s session settings: {exc}")


# -- the tests ------------------------------------------------------------------------------


def test_blocks_are_found():
    """The extractor sees the pages (guards against a silently empty parametrization)."""
    files = {block.path for block in BLOCKS}
    assert ROOT / "README.rst" in files
    assert {DOCS / "quickstart.rst", DOCS / "flask.md", DOCS / "configuration.rst"} <= files
    assert sum(block.language == "python" for block in BLOCKS) >= 40


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs_as_pasted(block: Block, tmp_path: Path, monkeypatch) -> None:
    if block.language is None:
        pytest.fail(
            f"{block.id}: a code block without a language: use a code-block directive "
            "(RST) or a fenced block with an info string (Markdown), e.g. python, "
            f"ini, console or text ({', '.join(sorted(NOT_EXECUTABLE | EXECUTABLE))})"
        )
    if block.language in NOT_EXECUTABLE:
        return
    if block.language not in EXECUTABLE:
        pytest.fail(
            f"{block.id}: language {block.language!r} is neither run by this test "
            f"({', '.join(sorted(EXECUTABLE))}) nor shown-only "
            f"({', '.join(sorted(NOT_EXECUTABLE))})"
        )
    secret = secrets.token_urlsafe(32)
    monkeypatch.setenv("WSGISESSION_SECRET_KEY", secret)
    monkeypatch.chdir(tmp_path)
    if block.language == "python":
        run_python(block, tmp_path, secret)
    elif block.language == "ini":
        run_ini(block, tmp_path, secret)
    else:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.executescript(block.code)
