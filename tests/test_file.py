"""Files (``src/reduce/file.rs``): a file open for reading loads in a fresh interpreter as an
``io.StringIO`` (text) or ``io.BytesIO`` (binary) with its whole contents, its position and
its name, through plain ``pickle.loads``, in both modes and without satchel on the receiver.
``sys.stdout``/``sys.stderr`` are the receiver's own; everything else is a PicklingError with
cloudpickle's wording and the path to the file."""

import io
import os
import pickle

import pytest

import satchel
from conftest import OTHER_PYTHONS, child_eval, child_eval_bytes, run_script, stdlib_eval

TEXT = "héllo\nwörld\nthird line\n"

# In the child: what a loaded file is.
SHOW = "(type(obj).__name__, obj.name, obj.tell(), obj.read(), obj.seek(0), obj.read())"


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text(TEXT, encoding="utf-8")
    return str(p)


def test_text_file_cross_process(path):
    with open(path, encoding="utf-8") as f:
        f.readline()
        before = f.tell()
        result = child_eval(f, SHOW)
        # The file itself is where it was.
        assert f.tell() == before
        assert f.read() == TEXT[6:]
    # The position counts characters ('é' is two bytes in the file).
    assert result == ("StringIO", path, 6, TEXT[6:], 0, TEXT)


@pytest.mark.parametrize("mode,buffering", [("rb", -1), ("r+b", -1), ("rb", 0)])
def test_binary_file_cross_process(path, mode, buffering):
    data = TEXT.encode()
    with open(path, mode, buffering=buffering) as f:
        f.read(3)
        assert child_eval(f, SHOW) == ("BytesIO", path, 3, data[3:], 0, data)
        assert f.tell() == 3


@pytest.mark.parametrize("mode", ["w+", "a+", "r+"])
def test_plus_modes(path, mode):
    with open(path, mode, encoding="utf-8") as f:
        if mode == "w+":
            f.write("written\n")
        f.seek(0)
        expected = "written\n" if mode == "w+" else TEXT
        assert child_eval(f, "(obj.tell(), obj.read())") == (0, expected)


def test_empty_file(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    with open(p) as f:
        assert child_eval(f, "(obj.read(), obj.tell())") == ("", 0)


def test_file_at_its_end(path):
    with open(path, encoding="utf-8") as f:
        f.read()
        assert child_eval(f, "(obj.tell(), obj.read(), len(obj.getvalue()))") == (
            len(TEXT),
            "",
            len(TEXT),
        )


def test_universal_newlines(tmp_path):
    p = tmp_path / "crlf"
    p.write_bytes(b"one\r\ntwo\r\nthree")
    with open(p) as f:
        f.readline()
        assert child_eval(f, "(obj.tell(), obj.read())") == (4, "two\nthree")


def functions_holding_files(path):
    text = open(path, encoding="utf-8")
    text.readline()
    binary = open(path, "rb")
    binary.read(2)

    def read_both():
        return (text.name == binary.name, text.tell(), text.read(), binary.tell(), binary.read())

    def closer():
        text.close()
        binary.close()

    return read_both, closer


@pytest.mark.parametrize("mode", ["nonportable", "portable"])
def test_files_in_a_function_both_modes(path, mode):
    read_both, closer = functions_holding_files(path)
    try:
        payload = satchel.dumps(read_both, mode=mode)
        expected = (True, 6, TEXT[6:], 2, TEXT.encode()[2:])
        assert child_eval_bytes(payload, "obj()") == expected
        standalone = payload if mode == "portable" else satchel.dumps(read_both, standalone=True)
        assert satchel.inspect(standalone)["standalone"]
        assert stdlib_eval(standalone, "obj()") == expected
    finally:
        closer()


@pytest.mark.parametrize("name", sorted(OTHER_PYTHONS))
def test_portable_files_load_on_other_interpreters(path, name):
    read_both, closer = functions_holding_files(path)
    try:
        payload = satchel.dumps(read_both, mode="portable")
        assert stdlib_eval(payload, "obj()", OTHER_PYTHONS[name]) == (
            True,
            6,
            TEXT[6:],
            2,
            TEXT.encode()[2:],
        )
    finally:
        closer()


def test_std_streams_are_the_receivers_own():
    # pytest replaces sys.stdout/stderr while it captures: run where they are the real ones.
    out = run_script(
        """
        import pickle, subprocess, sys
        import satchel
        payload = satchel.dumps([sys.stdout, sys.stderr, sys.__stdout__, sys.stdout])
        assert pickle.loads(payload)[0] is sys.stdout
        child = subprocess.run(
            [sys.executable, "-I", "-S", "-c",
             "import pickle, sys; o = pickle.loads(sys.stdin.buffer.read());"
             "print(o[0] is sys.stdout, o[1] is sys.stderr, o[2] is sys.__stdout__, o[3] is o[0])"],
            input=payload, capture_output=True, check=True)
        sys.stdout.write(child.stdout.decode())
        """
    )
    assert out.decode().split() == ["True", "True", "True", "True"]


def refusal(obj):
    with pytest.raises(satchel.PicklingError) as info:
        satchel.dumps(obj)
    assert isinstance(info.value, pickle.PicklingError)
    return str(info.value)


def test_stdin_is_refused():
    out = run_script(
        """
        import sys, satchel
        try:
            satchel.dumps(sys.stdin)
        except satchel.PicklingError as e:
            print(e)
        """
    )
    assert "Cannot pickle standard input" in out.decode()


def test_closed_file(path):
    with open(path) as f:
        pass
    message = refusal(f)
    assert "Cannot pickle closed files" in message
    assert repr(path) in message


def test_write_only_files(path):
    for mode in ("w", "a", "wb", "ab"):
        with open(path, mode) as f:
            message = refusal(f)
        assert "Cannot pickle files that are not opened for reading" in message
        assert f"mode '{mode}'" in message


def test_unseekable_pipe():
    r, w = os.pipe()
    with os.fdopen(r) as f, os.fdopen(w, "w"):
        message = refusal(f)
    assert (
        f"Cannot pickle file {r} (_io.TextIOWrapper) as it cannot be read: it is not seekable"
        in (message)
    )


def test_terminal():
    try:
        leader, follower = os.openpty()
    except OSError as e:
        pytest.skip(f"no pseudo-terminal here: {e}")
    with os.fdopen(leader, "wb"), open(follower) as f:
        if not f.isatty():
            pytest.skip("the pseudo-terminal does not report isatty() here")
        assert "Cannot pickle files that map to tty objects" in refusal(f)


def test_undecodable_text(tmp_path):
    p = tmp_path / "latin1"
    p.write_bytes("café".encode("latin-1"))
    with open(p, encoding="utf-8") as f:
        message = refusal(f)
        assert f.tell() == 0
    assert "as it cannot be read: 'utf-8' codec can't decode" in message


def test_not_a_file():
    message = refusal(io.TextIOWrapper(io.BytesIO(b"x")))
    assert "Cannot pickle files that do not map to an actual file" in message


def test_error_names_the_path_to_the_file(path):
    class Holder:
        def __init__(self, f):
            self.f = f

    with open(path, "w") as f:
        message = refusal({"jobs": [Holder(f)]})
    assert message.startswith("item ['jobs'] -> item 0 -> attribute 'f': ")
    assert "not opened for reading" in message

    with open(path) as g:
        pass

    def task():
        return g.read()

    message = refusal(task)
    assert message.startswith("closure cell 'g' of function ")
    assert "Cannot pickle closed files" in message
