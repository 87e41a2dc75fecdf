"""The README runs as written: every ```python block, in a fresh interpreter.

Each block is saved as a script and run with this interpreter, in README order, in one
temporary directory (so a block may read a file an earlier one wrote: the session example
saves ``work.satchel``, the next loads it). Three kinds of comment are checked, not just read:

- ``expr  # -> VALUE``: ``repr(expr)`` must be VALUE;
- comment lines right under a ``print(...)``: what it prints;
- a comment line ``SomeError: message`` right under a statement: that statement raises
  SomeError (the name as the README writes it, ``satchel.PicklingError``) with that message,
  and the block goes on, as in an interactive session.

``...`` in an expectation stands for anything. ```text blocks show messages satchel prints
where a Python block cannot run (no satchel, another interpreter); each is checked against what
satchel really prints. Shell commands (``make demo``...) are not run here; their targets must
exist.
"""

import ast
import hashlib
import importlib.util
import io
import pathlib
import re
import subprocess
import sys
import tokenize

import pytest

import satchel

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"
TIMEOUT = 180  # seconds per block (the Dask example starts a cluster)

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


def fenced(lang):
    """The README's ```lang blocks: (line of the fence, text)."""
    text = README.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in _FENCE.finditer(text)
        if m.group(1) == lang
    ]


# ---------------------------------------------------------------------------------------------
# Turning a block into a checked script
# ---------------------------------------------------------------------------------------------

HELPER = r"""
import builtins, contextlib, importlib, io, re, sys


def _match(expected, actual):
    pattern = ".*?".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, re.S) is not None


def value(got, expected, line):
    if not _match(expected, repr(got)):
        raise AssertionError(f"README line {line}: shows {expected!r}, got {got!r}")
    return got


@contextlib.contextmanager
def prints(expected, line):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    out = buffer.getvalue()
    sys.stdout.write(out)
    if not _match(expected, out.rstrip("\n")):
        raise AssertionError(f"README line {line}: shows output {expected!r}, got {out!r}")


def _resolve(name):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module) if module else builtins, attr)


@contextlib.contextmanager
def raises(name, message, line):
    cls = _resolve(name)
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, cls) or not _match(message, str(exc)):
            raise AssertionError(
                f"README line {line}: shows {name}: {message!r}, got {type(exc).__name__}: {exc}"
            ) from exc
    else:
        raise AssertionError(f"README line {line}: shows {name}, but nothing was raised")
"""

_ERROR_LINE = re.compile(r"^#\s*((?:\w+\.)*\w+(?:Error|Exception|Interpreter|Format)): (.*)$")
_COMPOUND = (
    ast.If,
    ast.For,
    ast.While,
    ast.With,
    ast.Try,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)


def instrument(source, first_line):
    """``source`` with each checked comment turned into a check (README line numbers in the
    messages)."""
    lines = source.splitlines()
    comments = {}  # line -> (comment text, whether the line holds only the comment)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            only = not tok.line[: tok.start[1]].strip()
            comments[tok.start[0]] = (tok.string, only)
    edits = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt) or isinstance(node, _COMPOUND):
            continue
        start, end = node.lineno, node.end_lineno
        indent = lines[start - 1][: node.col_offset]
        readme_line = first_line + end
        under = []
        n = end + 1
        while n in comments and comments[n][1]:
            under.append(comments[n][0])
            n += 1
        trailing = comments.get(end, ("", True))
        is_print = (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "print"
        )
        error = _ERROR_LINE.match(under[0]) if under else None
        body = lines[start - 1 : end]
        if is_print and under:
            expected = "\n".join(re.sub(r"^# ?", "", c) for c in under)
            wrapped = [f"{indent}with __readme.prints({expected!r}, {readme_line}):"]
            wrapped += ["    " + line for line in body]
        elif error:
            assert start == end, f"README line {readme_line}: one line per checked statement"
            name, message = error.groups()
            wrapped = [f"{indent}with __readme.raises({name!r}, {message!r}, {readme_line}):"]
            wrapped += ["    " + line for line in body]
        elif not trailing[1] and trailing[0].startswith("# ->"):
            assert isinstance(node, ast.Expr), f"README line {readme_line}: `# ->` on a statement"
            expected = trailing[0][len("# ->") :].strip()
            expr = ast.get_source_segment(source, node.value)
            wrapped = [f"{indent}__readme.value({expr}, {expected!r}, {readme_line})"]
        else:
            continue
        edits.append((start, end, wrapped))
    for start, end, wrapped in sorted(edits, reverse=True):
        lines[start - 1 : end] = wrapped
    return "import _readme_check as __readme\n" + "\n".join(lines) + "\n", len(edits)


# ---------------------------------------------------------------------------------------------
# Running every block, in order
# ---------------------------------------------------------------------------------------------

BLOCKS = fenced("python")

# What a block needs beyond its imports: satchel.dask imports distributed.
_NEEDS = {"satchel.dask": ["distributed"]}

# Blocks that show what CPython does and PyPy cannot, found by a line of theirs; the README's
# "PyPy 3.11" paragraph says so, and tests/test_pypy.py checks what PyPy does instead.
_CPYTHON_ONLY = {
    "running_mean([": "it pickles a started generator, which PyPy refuses",
    'allow=["operator.*"]': "PyPy's operator.itemgetter is _operator.itemgetter: its streams "
    "name that, and allow= must too",
}


def cannot_run_here(source):
    """Why the block cannot run on this interpreter, or None: a module it imports is not
    installed for it (numpy and distributed have no PyPy 3.11 wheels), or it shows what only
    CPython does."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.append(node.module)
    for module in modules:
        for needed in [module.partition(".")[0], *_NEEDS.get(module, [])]:
            if importlib.util.find_spec(needed) is None:
                return f"needs {needed}, which is not installed for this interpreter"
    if sys.implementation.name == "pypy":
        for line, why in _CPYTHON_ONLY.items():
            if line in source:
                return f"CPython only: {why}"
    return None


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Every Python block run in README order in one directory: {line: (process, checks)}."""
    where = tmp_path_factory.mktemp("readme")
    (where / "_readme_check.py").write_text(HELPER)
    results = {}
    for line, source in BLOCKS:
        if cannot_run_here(source):
            continue
        script, checks = instrument(source, line)
        path = where / f"readme_line_{line}.py"
        path.write_text(script)
        results[line] = (
            subprocess.run(
                [sys.executable, path.name],
                cwd=where,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            ),
            checks,
        )
    return results


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("line", [line for line, _ in BLOCKS], ids=lambda n: f"line-{n}")
def test_python_block_runs_as_written(ran, line):
    why = cannot_run_here(dict(BLOCKS)[line])
    if why:
        pytest.skip(why)
    proc, checks = ran[line]
    assert proc.returncode == 0, (
        f"README block at line {line} failed:\n{proc.stderr.decode()[-3000:]}"
    )


def test_examples_check_what_they_show(ran):
    """The examples' comments are checks (a README whose comments never matched would pass
    every block above)."""
    skipped = [line for line, source in BLOCKS if cannot_run_here(source)]
    if skipped:
        pytest.skip(f"the README blocks at lines {skipped} cannot run here")
    assert sum(checks for _, checks in ran.values()) >= 15


def test_instrument_catches_a_wrong_comment(tmp_path):
    """The checks fail when the README is wrong."""
    (tmp_path / "_readme_check.py").write_text(HELPER)
    wrong = [
        "1 + 1  # -> 3\n",
        "print('a')\n# b\n",
        "int('x')\n# TypeError: nope\n",
        "int('1')\n# ValueError: ...\n",
    ]
    for source in wrong:
        script, checks = instrument(source, 1)
        assert checks == 1
        (tmp_path / "wrong.py").write_text(script)
        proc = subprocess.run(
            [sys.executable, "wrong.py"],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1 and b"README line" in proc.stderr, source


# ---------------------------------------------------------------------------------------------
# Messages shown as text, links and commands
# ---------------------------------------------------------------------------------------------


def _no_satchel_message():
    k = 1
    data = satchel.dumps(lambda x: x + k)
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import pickle, sys; pickle.loads(sys.stdin.buffer.read())",
        ],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    # The -S run gets 3.15's "Site initialization is disabled" hint, which the README's reader
    # (a receiver without satchel, site enabled) does not.
    return proc.stderr.decode().strip().splitlines()[-1].split(". Site initialization")[0]


def _other_interpreter_message():
    """The message of a CPython 3.11 stream on CPython 3.12, from the bootstrap itself."""
    boot = satchel._satchel.bootstrap_module()
    saved = boot.LABEL, boot.FINGERPRINT
    boot.LABEL = "CPython 3.12/3531"
    boot.FINGERPRINT = hashlib.sha256(b"3.12").digest()[:16]
    try:
        boot.check(satchel.FORMAT_VERSION, 1, b"\0" * 16, "CPython 3.11/3495")
    except satchel.IncompatibleInterpreter as exc:
        return f"satchel.IncompatibleInterpreter: {exc}"
    finally:
        boot.LABEL, boot.FINGERPRINT = saved
    raise AssertionError("check() accepted another interpreter's fingerprint")


@pytest.mark.parametrize("line", [line for line, _ in fenced("text")], ids=lambda n: f"line-{n}")
def test_text_block_is_what_satchel_prints(line):
    text = " ".join(dict(fenced("text"))[line].split())
    if text.startswith("ModuleNotFoundError:"):
        assert text == _no_satchel_message()
    elif text.startswith("satchel.IncompatibleInterpreter:"):
        assert text == _other_interpreter_message()
    else:
        pytest.fail(f"README line {line}: a text block this test does not know how to check")


def test_links_and_images_exist():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert "docs/benchmarks.png" in local  # the plot is shown, not only linked
    assert re.search(r"!\[[^\]]*\]\(docs/benchmarks\.png\)", text)
    for target in local:
        assert (REPO / target).exists(), target


def test_make_targets_exist():
    makefile = (REPO / "Makefile").read_text()
    named = set(re.findall(r"`make ([a-z][\w-]*)`", README.read_text()))
    named |= set(re.findall(r"^\s+make ([a-z][\w-]*)", README.read_text(), re.M))
    assert {"demo", "test", "wheels"} <= named
    for target in named:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
