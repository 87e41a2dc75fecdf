"""The value-stack depth at each yield of a code object, from its bytecode: a suspended
frame's state is checked against it before satchel writes it (src/reduce/generator.rs).

The compiler's own stack effects (``dis.stack_effect``) are propagated along every edge, as
CPython's ``stackdepth()`` does: fall-through, jumps, and the exception table's handlers
(which start at their recorded depth, plus ``lasti``, plus the exception)."""

import dis
import weakref

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
_CACHE = weakref.WeakKeyDictionary()


def yield_depths(code):
    """{byte offset of each YIELD_VALUE: stack depth while suspended there}, or None when the
    bytecode does not analyse cleanly (the caller then refuses to resume)."""
    try:
        return _CACHE[code]
    except KeyError:
        pass
    try:
        depths = _depths(code)
    except (ValueError, KeyError, IndexError):
        depths = None
    if depths is not None:
        # YIELD_VALUE pops the yielded value before the frame suspends.
        depths = {off: d - 1 for off, (op, d) in depths.items() if op == _YIELD and d >= 1}
    _CACHE[code] = depths
    return depths


def _depths(code):
    instrs = list(dis.get_instructions(code))
    index = {ins.offset: k for k, ins in enumerate(instrs)}
    handlers = dis._parse_exception_table(code)
    seen = {}
    queued_handlers = set()
    work = [(0, 0)]
    while work:
        k, depth = work.pop()
        while k < len(instrs):
            ins = instrs[k]
            known = seen.get(ins.offset)
            if known is not None:
                if known[1] != depth:
                    raise ValueError(f"inconsistent stack depth at {ins.offset}")
                break
            if depth < 0 or depth > code.co_stacksize:
                raise ValueError(f"stack depth {depth} out of range at {ins.offset}")
            seen[ins.offset] = (ins.opcode, depth)
            for h, e in enumerate(handlers):
                if h not in queued_handlers and e.start <= ins.offset < e.end:
                    queued_handlers.add(h)
                    work.append((index[e.target], e.depth + int(e.lasti) + 1))
            if ins.opcode in _JUMPS:
                target = getattr(ins, "jump_target", None)
                target = ins.argval if target is None else target
                work.append(
                    (index[target], depth + dis.stack_effect(ins.opcode, ins.arg, jump=True))
                )
            if ins.opname in _NO_FALLTHROUGH:
                break
            if ins.opname == "RETURN_GENERATOR":
                depth += 1  # the value of the first send, which the next POP_TOP drops
            else:
                depth += dis.stack_effect(ins.opcode, ins.arg, jump=False)
            k += 1
    return seen
