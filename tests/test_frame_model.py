"""The model of what a suspended frame may hold (``satchel._frames``), checked against the
interpreter running the tests: the instruction signatures agree with ``dis.stack_effect`` and,
where the headers were measured (3.13+, tools/frame_layouts/stack_counts.json), with the
interpreter's own count of popped and pushed values; every base instruction has one; every
yield of the stdlib's generators gets a model; and the model of common constructs says what
the bytecode needs. The checks made with it on load are in test_generators.py."""

import dis
import io
import json
import opcode
import pathlib
import sys
import types

import pytest

import satchel

if not satchel._satchel.LIVE_GENERATORS.startswith("cpython-"):
    # _frames models CPython's bytecode (PyPy 3.11 runs 3.10-style bytecode, and its
    # generators' frames cannot be captured at all).
    pytest.skip(f"live generators: {satchel._satchel.LIVE_GENERATORS}", allow_module_level=True)

from satchel import _frames  # noqa: E402

MINOR = sys.version_info[1]
REPO = pathlib.Path(__file__).resolve().parent.parent
COUNTS = REPO / "tools" / "frame_layouts" / "stack_counts.json"

# Never in a code object's co_code (internal to the interpreter).
INTERNAL = {"CACHE", "ENTER_EXECUTOR", "INTERPRETER_EXIT", "RESERVED", "TRACE_RECORD"}
OPARGS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 255, 256, 257, 513)


def base_opnames():
    specialized = {s for family in getattr(opcode, "_specializations", {}).values() for s in family}
    return sorted(
        name
        for name, op in dis.opmap.items()
        if op < 256
        and name not in specialized
        and not name.startswith("INSTRUMENTED_")
        and name not in INTERNAL
    )


def counts(sig, oparg):
    """(popped, pushed) by a signature, or None when the oparg is invalid for it."""
    try:
        inputs, outputs = _frames._effect(sig, oparg)
    except ValueError:
        return None
    return len(inputs), len(outputs)


def test_every_base_instruction_has_a_signature():
    """A new Python version's new instructions fail here until _frames.py models them."""
    missing = [name for name in base_opnames() if name not in _frames.signatures()]
    assert not missing, f"no signature in satchel/_frames.py for {missing}"


@pytest.mark.parametrize("jump", [False, True], ids=["fall-through", "jump"])
def test_signatures_match_dis_stack_effect(jump):
    sigs = _frames.signatures()
    wrong = []
    for name in base_opnames():
        op = dis.opmap[name]
        has_arg = op >= dis.HAVE_ARGUMENT
        for oparg in OPARGS if has_arg else (0,):
            got = counts(sigs[name][1 if jump else 0], oparg)
            if got is None:
                continue
            try:
                want = dis.stack_effect(op, oparg if has_arg else None, jump=jump)
            except ValueError:
                continue
            # RETURN_GENERATOR: 3.11/3.12's compiler counts 0, but resuming the created frame
            # pushes the value sent in (the POP_TOP after it drops it), as 3.13+ count.
            if got[1] - got[0] != want and name != "RETURN_GENERATOR":
                wrong.append((name, oparg, got[1] - got[0], want))
    assert not wrong, f"net stack effects differ from dis.stack_effect: {wrong[:10]}"


@pytest.mark.skipif(
    str(MINOR) not in json.loads(COUNTS.read_text()),
    reason=f"no measured counts for 3.{MINOR} (its headers have no opcode metadata before 3.13)",
)
def test_signatures_match_the_interpreters_own_counts():
    data = json.loads(COUNTS.read_text())
    opargs, table = data["opargs"], data[str(MINOR)]
    sigs = _frames.signatures()
    wrong = []
    for name, (popped, pushed) in sorted(table.items()):
        if name not in sigs:
            continue
        for oparg, p, q in zip(opargs, popped, pushed):
            got = counts(sigs[name][0], oparg)
            if got is not None and got != (p, q):
                wrong.append((name, oparg, got, (p, q)))
    assert not wrong, f"(popped, pushed) differ from the headers' metadata: {wrong[:10]}"


def _generator_codes(module_names):
    def walk(code):
        yield code
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                yield from walk(const)

    for name in module_names:
        module = __import__(name, fromlist=["_"])
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        source = pathlib.Path(path).read_text(encoding="utf-8")
        for code in walk(compile(source, path, "exec")):
            if code.co_flags & 0x2A0:  # generator, coroutine, async generator
                yield code


def test_every_yield_in_the_stdlib_has_a_model():
    modules = [
        "asyncio.tasks",
        "asyncio.base_events",
        "asyncio.streams",
        "json.encoder",
        "difflib",
        "ast",
        "inspect",
        "tokenize",
        "email._header_value_parser",
        "os",
        "contextlib",
        "dis",
        "pathlib",
        "zipfile",
    ]
    yields, missing = 0, []
    for code in _generator_codes(modules):
        assert _frames.yield_depths(code) is not None, code
        for ins in dis.get_instructions(code):
            if ins.opname == "YIELD_VALUE":
                yields += 1
                if _frames.frame_model(code, ins.offset // 2) is None:
                    missing.append((code.co_qualname, ins.offset))
    assert yields > 100
    assert not missing


def _model_of(gen_function, *args, steps=1, send=None):
    """The model of a generator's frame where it stands after ``steps`` steps."""
    g = gen_function(*args)
    g.send(None)
    for _ in range(steps - 1):
        g.send(send)
    # the offset of the YIELD_VALUE it waits after, as satchel pickles it (3.13+ frames point
    # past it)
    state = satchel.Pickler(io.BytesIO()).reducer_override(g)[2]
    stack, local_reqs = _frames.frame_model(g.gi_code, state[2])
    return stack, local_reqs


def _reqs(stack):
    return [set(reqs) for _, reqs, _, _ in stack]


def test_model_of_a_for_loop_needs_an_iterator():
    def gen(xs):
        for x in xs:  # noqa: UP028 (the for loop is the point)
            yield x

    stack, _ = _model_of(gen, iter([1, 2]))
    if MINOR >= 15:
        # the iterator and its index: an iterator with NULL, or a list/tuple with an int
        assert [a for a, _, _, _ in stack] == ["o", "nt"]
        assert "viter" in _reqs(stack)[0] and stack[0][2] == 1
        assert "vindex" in _reqs(stack)[1]
    else:
        assert [a for a, _, _, _ in stack] == ["o"]
        assert {"nn", "obj", "iter"} <= _reqs(stack)[0]


def test_model_of_a_pending_call_has_its_null():
    def call(*args):
        return args

    def gen(a):
        return call(a, (yield))

    stack, _ = _model_of(gen, 1)
    atoms = [a for a, _, _, _ in stack]
    assert "n" in atoms, atoms  # the NULL LOAD_GLOBAL (or PUSH_NULL) pushes: only NULL
    assert atoms.count("n") == 1
    null = atoms.index("n")
    assert "nn" not in _reqs(stack)[null]
    assert all("nn" in r for i, r in enumerate(_reqs(stack)) if i != null)


def test_model_of_an_except_handler_needs_the_previous_exception():
    def gen():
        try:
            raise ValueError(1)
        except ValueError:
            yield "in handler"

    stack, _ = _model_of(gen)
    reqs = _reqs(stack)
    assert any("excnone" in r for r in reqs), reqs  # what POP_EXCEPT restores


def test_model_of_a_finally_on_the_exception_path_needs_its_exception():
    def gen():
        try:
            raise KeyError(1)
        finally:
            yield "cleanup"

    stack, _ = _model_of(gen)
    assert any("exc" in r for r in _reqs(stack))  # what the re-raise at its end raises


def test_model_of_an_async_with_exit_awaited_after_an_error_has_the_saved_lasti():
    """The one yield with a handler's lasti on the stack: ``__aexit__`` awaited after the
    body raised (an int object before 3.14, a tagged int since)."""

    class Step:
        def __await__(self):
            yield "step"

    class ACM:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            await Step()
            return True

    async def coro():
        async with ACM():
            raise ValueError(1)

    c = coro()
    assert c.send(None) == "step"
    state = satchel.Pickler(io.BytesIO()).reducer_override(c)[2]
    stack, _ = _frames.frame_model(c.cr_code, state[2])
    atoms = [a for a, _, _, _ in stack]
    assert atoms.count("l") == 1, atoms
    c.close()


def test_model_of_a_comprehension_building_a_list():
    def gen(xs):
        return [*xs, (yield)]

    stack, _ = _model_of(gen, [1])
    assert any("list" in r for r in _reqs(stack))


def test_model_of_with_needs_its_exit():
    class CM:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def gen():
        with CM():
            yield 1

    stack, _ = _model_of(gen)
    assert stack, "the with block keeps its exit on the stack"
    assert all("o" in a for a, _, _, _ in stack[:1])
    assert "nn" in _reqs(stack)[0]


def test_unchecked_local_loads_need_a_bound_local():
    def gen(a):
        x = a
        yield 1
        yield x

    _, local_reqs = _model_of(gen, 1)
    names = {gen.__code__.co_varnames[j]: set(reqs) for j, reqs, _ in local_reqs}
    if MINOR == 11:
        assert "nn" not in names.get("x", set())  # 3.11 checks every LOAD_FAST
    else:
        assert "nn" in names["x"]


def test_checked_local_loads_allow_an_unbound_local():
    def gen(flag):
        if flag:
            x = 1
        yield 1
        yield x  # noqa: F821 (maybe unbound: LOAD_FAST_CHECK)

    _, local_reqs = _model_of(gen, False)
    names = {gen.__code__.co_varnames[j]: set(reqs) for j, reqs, _ in local_reqs}
    assert "nn" not in names.get("x", set())


def test_yield_from_delegate():
    def sub():
        yield 1
        yield 2

    def gen():
        yield from sub()

    stack, _ = _model_of(gen)
    delegate = stack[-2] if MINOR >= 15 else stack[-1]
    assert {"nn", "obj"} <= set(delegate[1])
    assert "gi_yieldfrom" in " ".join(delegate[3].values()) or delegate[3]
