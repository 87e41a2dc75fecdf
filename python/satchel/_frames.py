"""What a suspended frame may hold, derived from its bytecode: satchel checks a loaded frame
against it before writing it (src/reduce/generator.rs, docs/FORMAT.md "Generators").

Two passes over the code, per CPython 3.11-3.15 (the instruction signatures below, one table
per version, in the notation of CPython's ``Python/bytecodes.c``):

1. *From the entry*, as CPython's ``stackdepth()`` does but slot by slot: the depth of the
   value stack at each instruction, and for each slot what the instructions that push it can
   put there (an object, NULL, a 3.14+ tagged int: the ``lasti`` an exception handler saves or
   3.15's iteration index). Fall-through, jumps and exception handlers (which start at their
   recorded depth, plus ``lasti``, plus the exception) are all followed.
2. *Backward from every exit*, once per code object: what the instructions that can run
   from each point need of each value-stack slot and each fast local, following values as
   they are copied, swapped, stored and loaded, along every edge (exception handlers
   included). The model of a yield is that of its own instruction, which adds the handler a
   ``throw()``/``close()`` reaches and ``gi_yieldfrom``'s read of a delegate. The needs: not
   NULL (every consumer but a few), not a tagged int, and where the consumer does not check
   types itself: an iterator (``FOR_ITER``), the exact list, set or dict a display or
   comprehension is built in, an exception (handlers, ``RERAISE``, ``POP_EXCEPT``), a tuple of
   defaults, and so on. A local must be bound only where an unchecked ``LOAD_FAST`` (3.12+)
   can read it before it is stored again.

A frame passes when every slot holds something the bytecode can have pushed there and that
every instruction that can consume it accepts. The checks themselves run in Rust, on the
values, with no Python code in between (``generator.rs``).
"""

import dis
import sys
import weakref

MINOR = sys.version_info[1]

# ---------------------------------------------------------------------------------------------
# Instruction signatures: "inputs -- outputs", deepest first. An output named as an input is
# that same value (moved); other outputs are new values. ``name[n]`` is n values, ``name if
# (cond)`` is 0 or 1 value; n and cond are Python expressions of ``oparg``.
#
# Input annotations (what the instruction needs; the default is a non-NULL object):
#   ``?``      may be NULL          ``:ANY``  anything (NULL, tagged int)
#   ``:NN``    not NULL (a tagged int is fine)
#   ``:ITER`` an iterator  ``:LIST`` ``:SET`` ``:DICT`` ``:TUPLE`` ``:STR`` the exact type
#   ``:EXC``  an exception  ``:EXCNONE`` an exception or None  ``:EXCLIST`` a list of those
#   ``:CODE`` a code object  ``:FUNC`` a function  ``:VITER``/``:VSEND`` + ``:VINDEX`` (3.15) an
#   iterator with a NULL index, or an object whose type iterates by index (``_tp_iteritem``:
#   exact list, tuple, str, bytes) with a tagged index >= 0
# Output annotations (what the instruction pushes; the default is an object):
#   ``:NULL`` always NULL    ``?`` an object or NULL    ``:INDEX`` NULL or a tagged int (3.15)
# ---------------------------------------------------------------------------------------------

_BASE = {  # 3.11
    "NOP": "--",
    "LOAD_CONST": "-- value",
    "LOAD_FAST": "-- value",
    "LOAD_CLOSURE": "-- value",
    "STORE_FAST": "value? --",
    "RESUME": "--",
    "EXTENDED_ARG": "--",
    "CACHE": "--",
    "KW_NAMES": "--",
    "MAKE_CELL": "--",
    "COPY_FREE_VARS": "--",
    "SETUP_ANNOTATIONS": "--",
    "JUMP_FORWARD": "--",
    "JUMP_BACKWARD": "--",
    "JUMP_BACKWARD_NO_INTERRUPT": "--",
    "DELETE_FAST": "--",
    "DELETE_DEREF": "--",
    "DELETE_NAME": "--",
    "DELETE_GLOBAL": "--",
    "RETURN_GENERATOR": "-- sent",
    "POP_TOP": "value:NN --",
    "PUSH_NULL": "-- null:NULL",
    "COPY": "bottom:NN, unused[oparg-1]:ANY -- bottom, unused[oparg-1], bottom",
    "SWAP": "bottom:ANY, unused[oparg-2]:ANY, top:ANY -- top, unused[oparg-2], bottom",
    "UNARY_POSITIVE": "value -- res",
    "UNARY_NEGATIVE": "value -- res",
    "UNARY_NOT": "value -- res",
    "UNARY_INVERT": "value -- res",
    "BINARY_OP": "lhs, rhs -- res",
    "BINARY_SUBSCR": "container, sub -- res",
    "STORE_SUBSCR": "v, container, sub --",
    "DELETE_SUBSCR": "container, sub --",
    "PRINT_EXPR": "value --",
    "RETURN_VALUE": "retval --",
    "GET_AITER": "obj -- iter",
    "GET_ANEXT": "aiter -- aiter, awaitable",
    "GET_AWAITABLE": "iterable -- iter",
    "SEND": ("receiver, v -- receiver, retval", "receiver, v -- retval"),
    "ASYNC_GEN_WRAP": "v -- w",
    "YIELD_VALUE": "retval -- sent",
    "POP_EXCEPT": "prev_exc:EXCNONE --",
    "RERAISE": "values[oparg]:NN, exc:EXC -- values[oparg]",
    "PREP_RERAISE_STAR": "orig:EXC, excs:EXCLIST -- val",
    "END_ASYNC_FOR": "awaitable, exc:EXC --",
    "LOAD_ASSERTION_ERROR": "-- value",
    "LOAD_BUILD_CLASS": "-- bc",
    "STORE_NAME": "v --",
    "UNPACK_SEQUENCE": "seq -- values[oparg]",
    "UNPACK_EX": "seq -- values[(oparg & 0xFF) + (oparg >> 8) + 1]",
    "STORE_ATTR": "v, owner --",
    "DELETE_ATTR": "owner --",
    "STORE_GLOBAL": "v --",
    "LOAD_NAME": "-- v",
    "LOAD_GLOBAL": "-- null:NULL if (oparg & 1), v",
    "LOAD_CLASSDEREF": "-- v",
    "LOAD_DEREF": "-- v",
    "STORE_DEREF": "v --",
    "BUILD_STRING": "pieces[oparg] -- str",
    "BUILD_TUPLE": "values[oparg] -- tup",
    "BUILD_LIST": "values[oparg] -- list",
    "LIST_TO_TUPLE": "list:LIST -- tuple",
    "LIST_EXTEND": "list:LIST, unused[oparg-1]:ANY, iterable -- list, unused[oparg-1]",
    "SET_UPDATE": "set:SET, unused[oparg-1]:ANY, iterable -- set, unused[oparg-1]",
    "BUILD_SET": "values[oparg] -- set",
    "BUILD_MAP": "values[oparg*2] -- map",
    "BUILD_CONST_KEY_MAP": "values[oparg], keys -- map",
    "DICT_UPDATE": "dict, unused[oparg-1]:ANY, update -- dict, unused[oparg-1]",
    # the callable is read for an error message
    "DICT_MERGE": (
        "func, null:ANY, dict, unused[oparg-1]:ANY, update -- func, null, dict, unused[oparg-1]"
    ),
    "LIST_APPEND": "list:LIST, unused[oparg-1]:ANY, v -- list, unused[oparg-1]",
    "SET_ADD": "set:SET, unused[oparg-1]:ANY, v -- set, unused[oparg-1]",
    "MAP_ADD": "dict:DICT, unused[oparg-1]:ANY, key, value -- dict, unused[oparg-1]",
    "LOAD_ATTR": "owner -- res",
    "LOAD_METHOD": "owner -- meth?, self",
    "COMPARE_OP": "left, right -- res",
    "IS_OP": "left, right -- b",
    "CONTAINS_OP": "left, right -- b",
    "CHECK_EG_MATCH": "exc_value:EXC, match_type -- rest, match",
    "CHECK_EXC_MATCH": "left:EXC, right -- left, b",
    "IMPORT_NAME": "level, fromlist -- res",
    "IMPORT_STAR": "from --",
    "IMPORT_FROM": "from -- from, res",
    "POP_JUMP_FORWARD_IF_FALSE": "cond --",
    "POP_JUMP_FORWARD_IF_TRUE": "cond --",
    "POP_JUMP_FORWARD_IF_NONE": "cond --",
    "POP_JUMP_FORWARD_IF_NOT_NONE": "cond --",
    "POP_JUMP_BACKWARD_IF_FALSE": "cond --",
    "POP_JUMP_BACKWARD_IF_TRUE": "cond --",
    "POP_JUMP_BACKWARD_IF_NONE": "cond --",
    "POP_JUMP_BACKWARD_IF_NOT_NONE": "cond --",
    "JUMP_IF_FALSE_OR_POP": ("cond --", "cond -- cond"),
    "JUMP_IF_TRUE_OR_POP": ("cond --", "cond -- cond"),
    "GET_LEN": "obj -- obj, len",
    "MATCH_CLASS": "subject, type, names:TUPLE -- attrs",
    "MATCH_MAPPING": "subject -- subject, res",
    "MATCH_SEQUENCE": "subject -- subject, res",
    "MATCH_KEYS": "subject, keys:TUPLE -- subject, keys, values",
    "GET_ITER": "iterable -- iter",
    "GET_YIELD_FROM_ITER": "iterable -- iter",
    "FOR_ITER": ("iter:ITER -- iter, next", "iter:ITER --"),
    "BEFORE_ASYNC_WITH": "mgr -- exit, res",
    "BEFORE_WITH": "mgr -- exit, res",
    "WITH_EXCEPT_START": "exit, lasti:NN, prev_exc:ANY, val:EXC -- exit, lasti, prev_exc, val, res",
    "PUSH_EXC_INFO": "new_exc:EXC -- prev_exc, new_exc",
    "PRECALL": "method?, callable, args[oparg] -- method, callable",
    "CALL": "method?, callable -- res",
    "CALL_FUNCTION_EX": "null?, func, callargs, kwargs if (oparg & 1) -- result",
    "MAKE_FUNCTION": (
        "defaults:TUPLE if (oparg & 1), kwdefaults:DICT if (oparg & 2), annotations if "
        "(oparg & 4), closure:TUPLE if (oparg & 8), codeobj:CODE -- func"
    ),
    "BUILD_SLICE": "start, stop, step if (oparg == 3) -- slice",
    "FORMAT_VALUE": "value, fmt_spec if ((oparg & 4) == 4) -- result",
    "RAISE_VARARGS": "args[oparg] --",
}

_V312 = {
    "BINARY_SLICE": "container, start, stop -- res",
    "STORE_SLICE": "v, container, start, stop --",
    "CALL_INTRINSIC_1": "value -- res",
    "CALL_INTRINSIC_2": "value2, value1 -- res",
    "CLEANUP_THROW": "sub_iter, last_sent_val, exc_value:EXC -- none, value",
    "END_FOR": "second, first --",
    "END_SEND": "receiver, value -- value",
    "LOAD_FAST_AND_CLEAR": "-- value?",
    "LOAD_FAST_CHECK": "-- value",
    "LOAD_FROM_DICT_OR_DEREF": "class_dict -- value",
    "LOAD_FROM_DICT_OR_GLOBALS": "mod_or_class_dict -- v",
    "LOAD_LOCALS": "-- locals",
    "LOAD_SUPER_ATTR": "global_super, class, self -- res2? if (oparg & 1), res",
    "POP_JUMP_IF_FALSE": "cond --",
    "POP_JUMP_IF_TRUE": "cond --",
    "POP_JUMP_IF_NONE": "cond --",
    "POP_JUMP_IF_NOT_NONE": "cond --",
    "RETURN_CONST": "--",
    "LOAD_ATTR": "owner -- res2? if (oparg & 1), res",
    "FOR_ITER": ("iter:ITER -- iter, next", "iter:ITER -- iter, next"),
    "SEND": ("receiver, v -- receiver, retval", "receiver, v -- receiver, retval"),
    "CALL": "method?, callable, args[oparg] -- res",
    "CALL_FUNCTION_EX": "null?, func, callargs, kwargs if (oparg & 1) -- result",
    "WITH_EXCEPT_START": "exit, lasti:NN, prev_exc:ANY, val:EXC -- exit, lasti, prev_exc, val, res",
}
_GONE_312 = (
    "ASYNC_GEN_WRAP",
    "JUMP_IF_FALSE_OR_POP",
    "JUMP_IF_TRUE_OR_POP",
    "LIST_TO_TUPLE",
    "LOAD_CLASSDEREF",
    "LOAD_METHOD",
    "PRECALL",
    "PREP_RERAISE_STAR",
    "PRINT_EXPR",
    "IMPORT_STAR",
    "UNARY_POSITIVE",
    "POP_JUMP_FORWARD_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE",
    "POP_JUMP_FORWARD_IF_NONE",
    "POP_JUMP_FORWARD_IF_NOT_NONE",
    "POP_JUMP_BACKWARD_IF_FALSE",
    "POP_JUMP_BACKWARD_IF_TRUE",
    "POP_JUMP_BACKWARD_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE",
)

_V313 = {
    "CALL": "callable, self_or_null?, args[oparg] -- res",
    "CALL_KW": "callable, self_or_null?, args[oparg], kwnames:TUPLE -- res",
    "CALL_FUNCTION_EX": "func, unused?, callargs, kwargs if (oparg & 1) -- result",
    "CONVERT_VALUE": "value -- result",
    "FORMAT_SIMPLE": "value -- res",
    "FORMAT_WITH_SPEC": "value, fmt_spec -- res",
    "LOAD_FAST_LOAD_FAST": "-- value1, value2",
    "STORE_FAST_LOAD_FAST": "value1? -- value2",
    "STORE_FAST_STORE_FAST": "value2?, value1? --",
    "SET_FUNCTION_ATTRIBUTE": "attr, func:FUNC -- func",
    "TO_BOOL": "value -- res",
    "EXIT_INIT_CHECK": "should_be_none --",
    "DICT_MERGE": (
        "callable, u1:ANY, u2:ANY, dict, unused[oparg-1]:ANY, update -- callable, u1, u2, dict, "
        "unused[oparg-1]"
    ),
    "LOAD_ATTR": "owner -- attr, self_or_null? if (oparg & 1)",
    "LOAD_GLOBAL": "-- res, null:NULL if (oparg & 1)",
    "LOAD_SUPER_ATTR": "global_super, class, self -- attr, null? if (oparg & 1)",
    "MAKE_FUNCTION": "codeobj:CODE -- func",
    "END_FOR": "value --",
}
_GONE_313 = ("KW_NAMES", "LOAD_CLOSURE")

_V314 = {
    "BUILD_INTERPOLATION": "value, str:STR, format[oparg & 1] -- interpolation",
    "BUILD_TEMPLATE": "strings:TUPLE, interpolations:TUPLE -- template",
    "LOAD_COMMON_CONSTANT": "-- value",
    "LOAD_FAST_BORROW": "-- value",
    "LOAD_FAST_BORROW_LOAD_FAST_BORROW": "-- value1, value2",
    "LOAD_SMALL_INT": "-- value",
    "LOAD_SPECIAL": "owner -- attr, self_or_null?",
    "NOT_TAKEN": "--",
    "POP_ITER": "iter --",
    "CALL_FUNCTION_EX": "func, unused?, callargs, kwargs? -- result",
    "WITH_EXCEPT_START": (
        "exit_func, exit_self?, lasti:NN, prev_exc:ANY, val:EXC -- exit_func, exit_self, "
        "lasti, prev_exc, val, res"
    ),
    "BUILD_SLICE": "args[oparg] -- slice",
    "RETURN_VALUE": "retval -- res",
}
_GONE_314 = (
    "BEFORE_ASYNC_WITH",
    "BEFORE_WITH",
    "BINARY_SUBSCR",
    "BUILD_CONST_KEY_MAP",
    "LOAD_ASSERTION_ERROR",
    "RETURN_CONST",
)

_V315 = {
    "GET_ITER": "iterable -- iter, index:INDEX",
    "FOR_ITER": (
        "iter:VITER, index:VINDEX -- iter, index, next",
        "iter:VITER, index:VINDEX -- iter, index, next",
    ),
    "POP_ITER": "iter, index:ANY --",
    "SEND": (
        "receiver:VSEND, index:VINDEX, v -- receiver, index, retval",
        "receiver:VSEND, index:VINDEX, v -- receiver, index, retval",
    ),
    "END_SEND": "receiver:NN, index:ANY, value -- value",
    "CLEANUP_THROW": "sub_iter, index:ANY, last_sent_val, exc_value:EXC -- none, index, value",
}
_GONE_315 = ("GET_YIELD_FROM_ITER",)


def signatures(minor=MINOR):
    """The signature table of CPython 3.``minor``: {opname: (signature, jump signature)}."""
    table = dict(_BASE)
    for since, added, gone in (
        (12, _V312, _GONE_312),
        (13, _V313, _GONE_313),
        (14, _V314, _GONE_314),
        (15, _V315, _GONE_315),
    ):
        if minor >= since:
            table.update(added)
            for name in gone:
                table.pop(name, None)
    return {k: v if isinstance(v, tuple) else (v, v) for k, v in table.items()}


# Instructions that read or write fast locals: {opname: (reads, writes)} as functions of oparg
# giving local indexes; reads are unchecked (they crash on NULL) unless listed in _CHECKED.
_LOCAL_LOADS = {
    "LOAD_FAST": lambda a: (a,),
    "LOAD_FAST_BORROW": lambda a: (a,),
    "LOAD_FAST_CHECK": lambda a: (a,),
    "LOAD_CLOSURE": lambda a: (a,),
    "LOAD_FAST_AND_CLEAR": lambda a: (a,),
    "LOAD_FAST_LOAD_FAST": lambda a: (a >> 4, a & 15),
    "LOAD_FAST_BORROW_LOAD_FAST_BORROW": lambda a: (a >> 4, a & 15),
    "STORE_FAST_LOAD_FAST": lambda a: (a & 15,),
}
_LOCAL_STORES = {  # [(local, index of the popped value)], in the order they are stored
    "STORE_FAST": lambda a: ((a, 0),),
    "STORE_FAST_LOAD_FAST": lambda a: ((a >> 4, 0),),
    "STORE_FAST_STORE_FAST": lambda a: ((a >> 4, 1), (a & 15, 0)),  # (value2, value1 --)
}
_LOCAL_CLEARS = {"DELETE_FAST", "LOAD_FAST_AND_CLEAR", "MAKE_CELL"}
# 3.11 checks every LOAD_FAST; 3.12+ only LOAD_FAST_CHECK (the compiler proves the others).
_CHECKED = {"LOAD_FAST_CHECK", "LOAD_CLOSURE", "LOAD_FAST_AND_CLEAR"} | (
    {"LOAD_FAST"} if MINOR == 11 else set()
)

_NO_FALLTHROUGH = frozenset(
    name
    for name in (
        "RETURN_VALUE",
        "RETURN_CONST",
        "RAISE_VARARGS",
        "RERAISE",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP",
        "JUMP_NO_INTERRUPT",
        "JUMP_ABSOLUTE",
    )
    if name in dis.opmap
)
# END_ASYNC_FOR (3.14 lists it in hasjump) names where its loop came from, not a target.
_JUMPS = (
    frozenset(getattr(dis, "hasjump", ())) | frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
) - {dis.opmap.get("END_ASYNC_FOR"), dis.opmap.get("INSTRUMENTED_END_ASYNC_FOR")}
_YIELD = dis.opmap["YIELD_VALUE"]
_RESUME = dis.opmap["RESUME"]
_INTRINSIC_1 = getattr(dis, "_intrinsic_1_descs", ())
_INTRINSIC_2 = getattr(dis, "_intrinsic_2_descs", ())

# ---------------------------------------------------------------------------------------------
# Parsing signatures
# ---------------------------------------------------------------------------------------------

_ITEM_CACHE = {}


def _parse_side(text):
    items = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        cond = None
        if " if " in raw:
            raw, cond = raw.split(" if ", 1)
        ann = ""
        if ":" in raw:
            raw, ann = raw.split(":", 1)
        count = None
        if "[" in raw:
            raw, count = raw[:-1].split("[", 1)
        nullable = raw.endswith("?")
        name = raw.rstrip("?")
        items.append((name, count, cond, ann, nullable))
    return items


def _expand(items, oparg):
    out = []
    for name, count, cond, ann, nullable in items:
        if cond is not None and not eval(cond, {"oparg": oparg}):  # noqa: S307 (our table)
            continue
        n = 1 if count is None else eval(count, {"oparg": oparg})  # noqa: S307
        if n < 0:
            raise ValueError(f"negative count for {name}")
        for k in range(n):
            out.append(((name, k), ann, nullable))
    return out


def _effect(sig, oparg):
    """(inputs, outputs) of a signature: inputs [(req, ...)], outputs [('in', i) | ('new',
    kind)], deepest first."""
    key = (sig, oparg)
    cached = _ITEM_CACHE.get(key)
    if cached is not None:
        return cached
    left, right = sig.split("--")
    ins = _expand(_parse_side(left), oparg)
    outs = _expand(_parse_side(right), oparg)
    where = {name: i for i, (name, _, _) in enumerate(ins)}
    inputs = [_requirement(ann, nullable) for _, ann, nullable in ins]
    outputs = []
    for name, ann, nullable in outs:
        if name in where:
            outputs.append(("in", where[name]))
        else:
            outputs.append(("new", _produced(ann, nullable)))
    cached = _ITEM_CACHE[key] = (inputs, outputs)
    return cached


def _requirement(ann, nullable):
    """The requirement of an input: a frozenset of codes (docs in the module header)."""
    if ann == "ANY":
        return frozenset()
    if ann == "NN":
        return frozenset({"nn"})
    if ann == "VINDEX":  # NULL or a tagged int: checked with its iterator
        return frozenset({"vindex"})
    req = {"obj"} if nullable else {"nn", "obj"}
    if ann:
        req.add(ann.lower())
    return frozenset(req)


# Producer atoms: o an object, n NULL, t a tagged int (3.15 index), l an exception handler's
# saved lasti (an int object before 3.14, a tagged int since).
_OBJ, _NULL, _NULLABLE = frozenset("o"), frozenset("n"), frozenset("on")
_INDEX, _LASTI = frozenset("nt"), frozenset("l")


def _produced(ann, nullable):
    if ann == "NULL":
        return _NULL
    if ann == "INDEX":
        return _INDEX
    return _NULLABLE if nullable else _OBJ


# ---------------------------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------------------------


class _Code:
    """The instructions of a code object, with jump targets and exception handlers."""

    def __init__(self, code):
        self.code = code
        self.instrs = list(dis.get_instructions(code))
        self.index = {ins.offset: k for k, ins in enumerate(self.instrs)}
        self.handlers = dis._parse_exception_table(code)
        self.sigs = signatures()
        self._lines = None
        # co_nlocalsplus: a cell that is also an argument has one slot
        cells = set(code.co_cellvars) - set(code.co_varnames)
        self.nlocals = len(code.co_varnames) + len(cells) + len(code.co_freevars)

    def handler_at(self, offset):
        """The innermost handler covering ``offset`` (the first match, as CPython's search)."""
        for h in self.handlers:
            if h.start <= offset < h.end:
                return h
        return None

    def effect(self, ins, jump):
        sig = self.sigs.get(ins.opname)
        if sig is None:
            raise ValueError(f"no stack model for {ins.opname}")
        return _effect(sig[1] if jump else sig[0], ins.arg or 0)

    def target(self, ins):
        target = getattr(ins, "jump_target", None)
        return self.index[ins.argval if target is None else target]

    def line(self, ins):
        """The instruction's line, or the last one before it (cleanup code has none)."""
        if self._lines is None:
            self._lines, last = {}, None
            for i in self.instrs:
                line = getattr(i, "line_number", None)
                if line is None and i.positions is not None:
                    line = i.positions.lineno
                last = line if line is not None else last
                self._lines[i.offset] = last
        return self._lines.get(ins.offset)


def _intrinsic_requirements(ins, inputs):
    """CALL_INTRINSIC_1/2 inputs whose functions do not check their argument's type."""
    if ins.opname == "CALL_INTRINSIC_1" and ins.arg is not None and ins.arg < len(_INTRINSIC_1):
        name = _INTRINSIC_1[ins.arg]
        if name == "INTRINSIC_LIST_TO_TUPLE":
            return [frozenset({"nn", "obj", "list"})]
        if name == "INTRINSIC_STOPITERATION_ERROR":
            return [frozenset({"nn", "obj", "exc"})]
    if ins.opname == "CALL_INTRINSIC_2" and ins.arg is not None and ins.arg < len(_INTRINSIC_2):
        if _INTRINSIC_2[ins.arg] == "INTRINSIC_PREP_RERAISE_STAR":
            return [frozenset({"nn", "obj", "exc"}), frozenset({"nn", "obj", "exclist"})]
    if ins.opname == "SET_FUNCTION_ATTRIBUTE":
        kind = {1: "tuple", 2: "dict", 8: "tuple"}.get(ins.arg)
        if kind:
            return [frozenset({"nn", "obj", kind}), inputs[1]]
    return inputs


def _entry_pass(c):
    """{offset: (stack producer sets)} for every reachable instruction, from the entry."""
    code = c.code
    at = {}
    work = [(0, ())]
    while work:
        k, stack = work.pop()
        while k < len(c.instrs):
            ins = c.instrs[k]
            known = at.get(ins.offset)
            if known is not None:
                if len(known) != len(stack):
                    raise ValueError(f"inconsistent stack depth at {ins.offset}")
                merged = tuple(a | b for a, b in zip(known, stack))
                if merged == known:
                    break
                stack = merged
            if len(stack) > code.co_stacksize:
                raise ValueError(f"stack depth {len(stack)} out of range at {ins.offset}")
            at[ins.offset] = stack
            h = c.handler_at(ins.offset)
            # A handler deeper than the stack covers instructions that cannot raise (3.15's
            # generator expressions: their iterator's handler also covers the return).
            if h is not None and h.depth <= len(stack):
                work.append(
                    (c.index[h.target], stack[: h.depth] + ((_LASTI,) if h.lasti else ()) + (_OBJ,))
                )
            if ins.opcode in _JUMPS:
                work.append((c.target(ins), _apply_kinds(c, ins, stack, True)))
            if ins.opname in _NO_FALLTHROUGH:
                break
            stack = _apply_kinds(c, ins, stack, False)
            k += 1
    return at


def _apply_kinds(c, ins, stack, jump):
    inputs, outputs = c.effect(ins, jump)
    n = len(inputs)
    if n > len(stack):
        raise ValueError(f"stack underflow at {ins.offset}")
    base, popped = stack[: len(stack) - n], stack[len(stack) - n :]
    pushed = tuple(popped[v] if how == "in" else v for how, v in outputs)
    return base + pushed


def _describe(c, k):
    ins = c.instrs[k]
    line = c.line(ins)
    where = f"line {line}, " if line is not None else ""
    return f"{ins.opname} at {where}offset {ins.offset}"


def _add(reqs, codes, k):
    """reqs (a dict code -> index of the first instruction needing it) with ``codes`` added, as
    needed by instruction ``k``; returns a new dict when something changed."""
    missing = [code for code in codes if code not in reqs or reqs[code] > k]
    if not missing:
        return reqs
    out = dict(reqs)
    for code in missing:
        out[code] = k
    return out


def _merge(a, b):
    """The union of two requirement dicts (keeping the first instruction per code)."""
    if not b or a is b:
        return a
    if not a:
        return b
    out = None
    for code, k in b.items():
        if code not in a or a[code] > k:
            if out is None:
                out = dict(a)
            out[code] = k
    return a if out is None else out


_NONE = {}
_NN = frozenset({"nn", "obj"})


def _needs_pass(c, entry):
    """What the instructions that can run from each point need of each value-stack slot and
    fast local: a backward dataflow over the whole code (every edge, exception handlers
    included), once per code object. Returns {instruction index: (stack reqs, local reqs)},
    each a tuple of dicts {code: index of the first instruction that needs it}."""
    n = len(c.instrs)
    depth = {k: len(entry[ins.offset]) for k, ins in enumerate(c.instrs) if ins.offset in entry}
    succs = {}  # k -> [(kind, target k)], kind "fall", "jump" or "handler"
    preds = {k: [] for k in depth}
    for k in depth:
        ins = c.instrs[k]
        out = []
        if ins.opname not in _NO_FALLTHROUGH and k + 1 < n:
            out.append(("fall", k + 1))
        if ins.opcode in _JUMPS:
            out.append(("jump", c.target(ins)))
        h = c.handler_at(ins.offset)
        if h is not None and h.depth <= depth[k]:
            out.append(("handler", c.index[h.target]))
        succs[k] = out
        for _, t in out:
            if t in preds:
                preds[t].append(k)
    nl = c.nlocals
    state = {
        k: (tuple(_NONE for _ in range(depth[k])), tuple(_NONE for _ in range(nl))) for k in depth
    }
    work = list(depth)
    queued = set(work)
    while work:
        k = work.pop()
        queued.discard(k)
        new = _transfer(c, k, depth, succs[k], state)
        if new != state[k]:
            state[k] = new
            for p in preds[k]:
                if p not in queued:
                    queued.add(p)
                    work.append(p)
    return state


def _transfer(c, k, depth, succs, state):
    ins = c.instrs[k]
    d = depth[k]
    stack = [_NONE] * d
    locals_ = None
    for kind, t in succs:
        if t not in state:
            continue
        t_stack, t_locals = state[t]
        if kind == "handler":
            h = c.handler_at(ins.offset)
            for p in range(min(h.depth, d)):
                stack[p] = _merge(stack[p], t_stack[p])
            locals_ = t_locals if locals_ is None else tuple(map(_merge, locals_, t_locals))
            continue
        s2, l2 = _through(c, k, ins, d, kind == "jump", t_stack, t_locals)
        for p in range(d):
            stack[p] = _merge(stack[p], s2[p])
        locals_ = l2 if locals_ is None else tuple(map(_merge, locals_, l2))
    if not any(kind != "handler" for kind, _ in succs):
        # no successor (return, raise): only the instruction's own inputs
        s2, l2 = _through(c, k, ins, d, False, None, None)
        for p in range(d):
            stack[p] = _merge(stack[p], s2[p])
        if locals_ is None:
            locals_ = l2
    if locals_ is None:
        locals_ = tuple(_NONE for _ in range(c.nlocals))
    # gi_yieldfrom, close() and throw() read the delegate of a frame suspended in yield from or
    # await, before any instruction runs.
    if ins.opcode == _YIELD and k + 1 < len(c.instrs):
        nxt = c.instrs[k + 1]
        if nxt.opcode == _RESUME and (nxt.arg or 0) & 3 >= 2:
            at = d - 1 - (2 if MINOR >= 15 else 1)
            if at >= 0:
                stack[at] = _add(stack[at], _NN, k)
    return tuple(stack), locals_


def _through(c, k, ins, d, jump, out_stack, out_locals):
    """The in-state one edge of instruction ``k`` contributes: its inputs' own requirements,
    plus what the successor needs of the values it passes on (moved slots, locals)."""
    name, arg = ins.opname, ins.arg or 0
    inputs, outputs = c.effect(ins, jump)
    inputs = _intrinsic_requirements(ins, inputs)
    npop = len(inputs)
    base = d - npop
    if base < 0:
        raise ValueError(f"stack underflow at {ins.offset}")
    stack = [_NONE] * d
    nl = c.nlocals
    locals_ = list(out_locals) if out_locals is not None else [_NONE] * nl
    if out_stack is not None:
        if len(out_stack) != base + len(outputs):
            raise ValueError(f"inconsistent stack depth after {ins.offset}")
        for p in range(base):
            stack[p] = out_stack[p]
    for i, req in enumerate(inputs):
        stack[base + i] = _add(_NONE, req, k) if req else _NONE
    if out_stack is not None:
        for q, (how, v) in enumerate(outputs):
            if how == "in":
                stack[base + v] = _merge(stack[base + v], out_stack[base + q])
    # Fast locals: what a store writes flows from the popped value, what a load reads flows
    # into the local (a checked load drops "not NULL": it raises instead).
    if name in _LOCAL_STORES or name in _LOCAL_CLEARS or name in _LOCAL_LOADS:
        after = {}  # local -> popped index it holds after the instruction's stores
        for j, i in _LOCAL_STORES.get(name, lambda a: ())(arg):
            after[j] = i
        cleared = {arg} if name in _LOCAL_CLEARS else set()
        loads = _LOCAL_LOADS[name](arg) if name in _LOCAL_LOADS else ()
        if any(j >= nl for j in list(after) + list(cleared) + list(loads)):
            raise ValueError(f"local out of range at {ins.offset}")
        # what each local's value after the instruction is needed for, moved to its source
        for j, i in after.items():
            stack[base + i] = _merge(stack[base + i], locals_[j])
        for j in after:
            locals_[j] = _NONE
        loaded_needs = {}
        for q, j in enumerate(loads):
            at = base + len(outputs) - len(loads) + q
            need = out_stack[at] if out_stack is not None else _NONE
            if name in _CHECKED:
                need = {code: kk for code, kk in need.items() if code != "nn"}
            else:
                need = _add(need, _NN, k)
            loaded_needs[j] = _merge(loaded_needs.get(j, _NONE), need)
        for j in cleared:
            locals_[j] = _NONE
        for j, need in loaded_needs.items():
            if j in after and name == "STORE_FAST_LOAD_FAST":
                stack[base + after[j]] = _merge(stack[base + after[j]], need)
            else:
                locals_[j] = _merge(locals_[j], need)
    return stack, tuple(locals_)


# ---------------------------------------------------------------------------------------------
# Entry points (cached per code object)
# ---------------------------------------------------------------------------------------------

_CACHE = weakref.WeakKeyDictionary()


def _analysis(code):
    """(the instructions, the entry pass, the needs pass or None), cached per code object; None
    when the code does not analyse."""
    try:
        return _CACHE[code]
    except KeyError:
        pass
    try:
        c = _Code(code)
        entry = _entry_pass(c)
        result = [c, entry, None, {}]
    except (ValueError, KeyError, IndexError, TypeError, NameError, SyntaxError):
        result = None
    _CACHE[code] = result
    return result


def yield_depths(code):
    """{byte offset of each YIELD_VALUE: stack depth while suspended there}, or None when the
    bytecode does not analyse cleanly (the caller then refuses to resume)."""
    a = _analysis(code)
    if a is None:
        return None
    c, entry = a[0], a[1]
    return {
        off: len(stack) - 1
        for off, stack in entry.items()
        if c.instrs[c.index[off]].opcode == _YIELD and stack
    }


def frame_model(code, offset):
    """What a frame suspended at the YIELD_VALUE at ``offset`` (code units) may hold, or None
    when the code does not analyse (the caller refuses).

    Returns ``(stack, locals)``: ``stack`` has one ``(atoms, reqs, partner, why)`` per value
    stack slot (deepest first); ``atoms`` is what the bytecode can have pushed there ("o" an
    object, "n" NULL, "t" a tagged int, "l" an exception handler's lasti), ``reqs`` the codes
    of what its consumers need ("nn" not NULL, "obj" not a tagged int, "iter", "list", "set",
    "dict", "tuple", "str", "code", "func", "exc", "excnone", "exclist", 3.15's "viter",
    "vsend", "vindex"), ``partner`` the index slot of a 3.15 iterator (or -1) and ``why`` the
    first instruction that needs each code ({code: text}). ``locals`` lists ``(index, reqs,
    why)`` for the fast locals some instruction needs."""
    a = _analysis(code)
    if a is None:
        return None
    c, entry, needs, models = a
    if offset in models:
        return models[offset]
    k = c.index.get(offset * 2)
    stack = entry.get(offset * 2)
    model = None
    if k is not None and stack and c.instrs[k].opcode == _YIELD:
        if needs is None:
            try:
                needs = a[2] = _needs_pass(c, entry)
            except (ValueError, KeyError, IndexError, TypeError):
                needs = a[2] = False
        if needs:
            model = _model(c, k, stack[:-1], needs[k])
    models[offset] = model
    return model


def _model(c, k, atoms, needs):
    """The model of a frame suspended at the YIELD_VALUE instruction ``k``: the needs of its
    in-state (what the resumed instructions, the handler a throw() reaches and gi_yieldfrom
    need) below the yielded value."""
    stack_needs, local_needs = needs
    depth = len(atoms)

    def why(need):
        return {code: _describe(c, kk) for code, kk in need.items()}

    slots = []
    for i in range(depth):
        need = stack_needs[i]
        partner = -1
        if "viter" in need or "vsend" in need:
            # 3.15: the index is the slot above its iterator (GET_ITER pushes them so)
            # (an await's is the NULL PUSH_NULL pushes)
            if i + 1 >= depth or not atoms[i + 1] <= _INDEX or "vindex" not in stack_needs[i + 1]:
                return None
            partner = i + 1
        slots.append(("".join(sorted(atoms[i])), tuple(sorted(need)), partner, why(need)))
    local_reqs = tuple(
        (j, tuple(sorted(need)), why(need)) for j, need in enumerate(local_needs) if need
    )
    return tuple(slots), local_reqs


def created_depth(code):
    """The value-stack depth of a created (not started) frame of ``code``: what its prologue
    pushed before RETURN_GENERATOR (3.15 generator expressions: their iterator), or None."""
    a = _analysis(code)
    if a is None:
        return None
    c, entry = a[0], a[1]
    for ins in c.instrs:
        if ins.opname == "RETURN_GENERATOR":
            stack = entry.get(ins.offset)
            return None if stack is None else len(stack)
    return None
