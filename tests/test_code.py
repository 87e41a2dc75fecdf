"""Code objects (src/reduce/code.rs): pickled directly, frozenset constants, nested code,
filename and line numbers, determinism under PYTHONHASHSEED."""

import pickle
import textwrap
import types

import satchel
from conftest import child_eval, echo, run_script


def code_fields(code):
    """Plain-data fields of a code object that must survive a round trip."""
    return (
        code.co_filename,
        code.co_name,
        code.co_qualname,
        code.co_firstlineno,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_varnames,
        code.co_names,
        code.co_freevars,
        code.co_cellvars,
        code.co_code,
        code.co_linetable,
        code.co_exceptiontable,
        list(code.co_lines()),
        list(code.co_positions()),
    )


CODE_FIELDS_EXPR = (
    "(lambda c: (c.co_filename, c.co_name, c.co_qualname, c.co_firstlineno, c.co_argcount,"
    " c.co_posonlyargcount, c.co_kwonlyargcount, c.co_flags, c.co_varnames, c.co_names,"
    " c.co_freevars, c.co_cellvars, c.co_code, c.co_linetable, c.co_exceptiontable,"
    " list(c.co_lines()), list(c.co_positions())))"
)


def test_eval_code_round_trips():
    code = compile("a + b * 2", "<mine>", "eval")
    assert child_eval(code, "(eval(obj, {'a': 1, 'b': 2}), obj.co_filename, obj.co_names)") == (
        5,
        "<mine>",
        ("a", "b"),
    )
    assert satchel.loads(satchel.dumps(code)) == code


def test_exec_code_with_loops_and_exception_table():
    source = textwrap.dedent(
        """\
        x = 1
        for i in range(3):
            x *= 2
        try:
            1 / 0
        except ZeroDivisionError:
            caught = 'caught'
        """
    )
    code = compile(source, "/virtual/exec_me.py", "exec")
    assert code.co_exceptiontable  # the try/except is in the table
    assert child_eval(code, "(lambda ns: (exec(obj, ns), ns['x'], ns['caught'])[1:])({})") == (
        8,
        "caught",
    )
    assert echo(code) == code


def test_all_fields_preserved_across_processes():
    def sample(a, b=1, /, c=2, *args, d, **kw):
        total = a + b + c + d
        for extra in args:
            try:
                total += extra
            except TypeError:
                total = -1
        return total

    code = sample.__code__
    assert child_eval(code, f"{CODE_FIELDS_EXPR}(obj)") == code_fields(code)
    assert child_eval(code, "obj.co_firstlineno") == code.co_firstlineno
    assert code.co_filename == __file__


def test_code_runs_as_function_in_child():
    def sample(a, b=1, *, c):
        return [a, b, c]

    assert child_eval(
        sample.__code__,
        "__import__('types').FunctionType(obj, {})(1, 2, c=3)",
    ) == [1, 2, 3]


def test_code_with_free_variables_pickled_directly():
    def outer():
        k = 5

        def inner(x):
            return x + k

        return inner

    code = outer().__code__
    assert code.co_freevars == ("k",)
    assert child_eval(
        code,
        "(__import__('types').FunctionType(obj, {}, None, None,"
        " (__import__('types').CellType(37),))(5), obj.co_freevars)",
    ) == (42, ("k",))


def test_frozenset_constants():
    def member(x):
        return x in {"a", "b", "c"}

    consts = [c for c in member.__code__.co_consts if isinstance(c, frozenset)]
    assert consts == [frozenset({"a", "b", "c"})]
    expr = (
        "(obj('a'), obj('c'), obj('z'),"
        " [c for c in obj.__code__.co_consts if isinstance(c, frozenset)],"
        " obj.__code__ == obj.__code__.replace())"
    )
    assert child_eval(member, expr) == (True, True, False, [frozenset({"a", "b", "c"})], True)
    assert child_eval(member.__code__, "obj.co_consts") == member.__code__.co_consts
    assert satchel.loads(satchel.dumps(member.__code__)) == member.__code__


def test_frozenset_constants_in_nested_code_and_tuples():
    def outer(x):
        def inner(y):
            return y in {1, 2, 3} and y not in {"p", "q"}

        return inner(x), x in {4.5, 6.5}

    # A constant tuple holding a frozenset (built by hand: the compiler does not make one).
    nested = outer.__code__.replace(
        co_consts=outer.__code__.co_consts + ((1, frozenset({"m", "n"}), ("t", frozenset({7}))),)
    )
    result = child_eval(
        (outer, nested),
        "(obj[0](2), obj[0](5), obj[0](4.5),"
        " [c for c in obj[0].__code__.co_consts if isinstance(c, frozenset)],"
        " [c for c in next(k for k in obj[0].__code__.co_consts if isinstance(k, type(obj[1])))"
        ".co_consts if isinstance(c, frozenset)],"
        " obj[1].co_consts[-1])",
    )
    inner_code = next(c for c in outer.__code__.co_consts if isinstance(c, types.CodeType))
    assert [c for c in inner_code.co_consts if isinstance(c, frozenset)] == [
        frozenset({1, 2, 3}),
        frozenset({"p", "q"}),
    ]
    assert result == (
        (True, False),
        (False, False),
        (False, True),
        [c for c in outer.__code__.co_consts if isinstance(c, frozenset)],
        [frozenset({1, 2, 3}), frozenset({"p", "q"})],
        (1, frozenset({"m", "n"}), ("t", frozenset({7}))),
    )
    assert satchel.loads(satchel.dumps(nested)) == nested


FROZENSET_SCRIPT = """
import pickle, sys
import satchel

def member(x):
    return x in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

sys.stdout.buffer.write(pickle.dumps((satchel.dumps(member.__code__), satchel.dumps(member))))
"""


def test_frozenset_constants_deterministic_across_hash_seeds():
    outs = [run_script(FROZENSET_SCRIPT, env={"PYTHONHASHSEED": str(s)}) for s in (1, 2, 3)]
    assert outs[0] == outs[1] == outs[2]
    code_payload, func_payload = pickle.loads(outs[0])
    assert pickle.loads(func_payload)("zeta") is True
    loaded = pickle.loads(code_payload)
    assert frozenset({"alpha", "theta"}) < next(
        c for c in loaded.co_consts if isinstance(c, frozenset)
    )


def test_nested_code_objects():
    source = textwrap.dedent(
        """\
        def f(n):
            def g(m):
                return [k * 2 for k in range(m)]
            return sum(g(n)) + (lambda z: z)(1)
        """
    )
    code = compile(source, "/virtual/nested.py", "exec")
    nested_names = sorted(c.co_name for c in code.co_consts if isinstance(c, types.CodeType))
    assert nested_names == ["f"]
    result = child_eval(
        code,
        "(lambda ns: (exec(obj, ns), ns['f'](4), ns['f'].__code__.co_filename,"
        " ns['f'].__code__.co_firstlineno,"
        " sorted((c.co_name, c.co_firstlineno) for c in ns['f'].__code__.co_consts"
        " if isinstance(c, type(obj))))[1:])({})",
    )
    assert result == (13, "/virtual/nested.py", 1, [("<lambda>", 4), ("g", 2)])


def test_filename_and_firstlineno_preserved():
    source = "\n\n\n\ndef late(x):\n    y = x\n    return y.missing\n"
    module_code = compile(source, "/some/where/else.py", "exec")
    late = types.FunctionType(
        next(c for c in module_code.co_consts if isinstance(c, types.CodeType)), {}
    )
    assert late.__code__.co_firstlineno == 5
    assert child_eval(
        late.__code__, "(obj.co_filename, obj.co_firstlineno, list(obj.co_lines()))"
    ) == ("/some/where/else.py", 5, list(late.__code__.co_lines()))


def test_function_and_its_code_share_one_object():
    def f():
        return 1

    assert child_eval((f, f.__code__), "(obj[0].__code__ is obj[1], obj[0]())") == (True, 1)


def test_same_code_in_two_functions_stays_one_object():
    def make(k):
        def f():
            return k

        return f

    a, b = make(1), make(2)
    assert a.__code__ is b.__code__
    assert child_eval((a, b), "(obj[0](), obj[1](), obj[0].__code__ is obj[1].__code__)") == (
        1,
        2,
        True,
    )


def test_frozenset_constant_in_recursive_closure():
    def outer():
        def walk(items):
            return [x for x in items if x in {"keep", "also"}] + (
                walk(items[1:]) if items and items[0] in {"again"} else []
            )

        return walk

    walk = outer()
    assert walk(["again", "keep", "drop"]) == ["keep", "keep"]
    assert child_eval(
        walk, "(obj(['again', 'keep', 'drop']), obj.__closure__[0].cell_contents is obj)"
    ) == (["keep", "keep"], True)
