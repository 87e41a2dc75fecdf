"""What each cell of the compat matrix should be, and the names of its errors.

`classify` turns an exception (class and message) into a short reason; `expect` says which
outcome satchel's design promises for a stream on a consumer (docs/FORMAT.md, README "Limits");
`KNOWN_ISSUES` lists the bugs found so far, each with the cells it explains (a bug fixed in a
stream format stays listed for the older streams that still carry it, `fixed_in`). matrix.py
marks every outcome that none of these predicts, and tests/test_compat_slice.py and
tests/test_fixtures.py fail on one. Stdlib only, Python 3.9+ (the tests import it too).
"""

import re

OK = "ok"

# Reasons: key -> (exception class as users see it, the short reason shown in a cell).
REASONS = {
    "incompatible-interpreter": (
        "IncompatibleInterpreter",
        "IncompatibleInterpreter",
    ),
    "incompatible-format": ("IncompatibleFormat", "IncompatibleFormat"),
    "needs-satchel-lean": (
        "ModuleNotFoundError",
        "needs satchel",
    ),
    "needs-zstd": ("UnpicklingError", "needs a zstd decoder"),
    "needs-satchel-generator": (
        "UnpicklingError",
        "needs satchel for a suspended generator",
    ),
    "dump-started-generator": (
        "PicklingError",
        "started generator in portable mode",
    ),
    "dump-no-frame-layout": (
        "PicklingError",
        "started generator: no frame layout for this interpreter",
    ),
}

# (key, exception class suffix, message regex, phase or None).
_PATTERNS = [
    ("incompatible-interpreter", ".IncompatibleInterpreter", r"", None),
    ("incompatible-format", ".IncompatibleFormat", r"", None),
    # Lean headers (format 1.4, 1.5) import their check from a module whose name is the message.
    (
        "needs-satchel-lean",
        "ModuleNotFoundError",
        r"_satchel_boot_\d+|satchel or dump with standalone=True|satchel 1_5\+ or standalone=True",
        "load",
    ),
    ("needs-zstd", ".UnpicklingError", r"zstd", "load"),
    ("needs-satchel-generator", ".UnpicklingError", r"generator|frame", "load"),
    ("dump-started-generator", "PicklingError", r"generator .* portable mode", "dump"),
    ("dump-no-frame-layout", "PicklingError", r"live generator pickling is not supported", "dump"),
]


def short_class(qualified):
    return qualified.rsplit(".", 1)[-1]


def classify(phase, error):
    """The reason key of an error ({"class", "message"}) met at ``phase`` ("dump", "load" or
    "use"): one of REASONS, or "other:<Class>:<message start>" for anything else."""
    cls, message = error["class"], error["message"]
    for key, suffix, pattern, want_phase in _PATTERNS:
        if want_phase not in (None, phase):
            continue
        if (cls == suffix or cls.endswith(suffix)) and re.search(pattern, message):
            return key
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"other:{short_class(cls)}:{first[:80]}"


def reason_text(key):
    """How a reason reads in a cell."""
    if key in REASONS:
        return REASONS[key][1]
    if key.startswith("known:"):
        return KNOWN_ISSUES_BY_ID[key[len("known:") :]]["label"]
    _, cls, message = key.split(":", 2)
    return f"{cls}: {message}"


# ---------------------------------------------------------------------------------------------
# Known bugs. Each: the reason key it produces, a label for cells, and which outcomes it
# explains: a predicate over (phase, object, variant, producer, consumer, satchel).
# ---------------------------------------------------------------------------------------------


def _version(interp):
    return tuple(interp["version"])


def _portable(variant):
    return variant.startswith("portable")


def _before(version):
    """An issue that streams of format ``version`` and later no longer have."""
    wanted = tuple(int(x) for x in version.split(".")[:2])
    return lambda stream_format: tuple(int(x) for x in stream_format.split(".")[:2]) < wanted


# Bugs of the current format: none. The three below were fixed in format 1.4 (portable
# classes travel as what the stdlib built them from: src/reduce/portable_class.rs); the format
# 1.2 and 1.3 fixture streams that carry them still fail where they always did (the producer's
# objects are in the stream), which tests/test_fixtures.py holds them to. The 3.14 dump
# failures (nested functions and dataclasses in portable mode) left no streams behind.
KNOWN_ISSUES = [
    {
        "id": "dataclass-params-slots",
        "phase": "load",
        "error": ("AttributeError", r"_DataclassParams"),
        "applies": lambda obj, variant, producer, consumer, satchel: (
            obj == "dataclass"
            and _portable(variant)
            and _version(producer) >= (3, 12)
            and _version(consumer) < (3, 12)
        ),
        "fixed_in": _before("1.4"),
        "label": "dataclass from 3.12+: `_DataclassParams` slots",
        "text": "A portable dataclass from CPython 3.12+ in a format 1.2/1.3 stream does not load "
        "on 3.9-3.11 or PyPy (`AttributeError: '_DataclassParams' object has no attribute "
        "'match_args'`): the class's `__dataclass_params__` travelled as the producer's "
        "`_DataclassParams`, whose slots differ between versions (fixed in format 1.4)",
        "where": "portable `dataclass`, producers 3.12/3.13 → consumers 3.9, 3.10, 3.11, PyPy",
    },
    {
        "id": "dataclass-replace",
        "phase": "load",
        "error": ("AttributeError", r"_replace"),
        "applies": lambda obj, variant, producer, consumer, satchel: (
            obj == "dataclass"
            and _portable(variant)
            and _version(producer) >= (3, 13)
            and _version(consumer) < (3, 13)
        ),
        "fixed_in": _before("1.4"),
        "label": "dataclass from 3.13+: `dataclasses._replace`",
        "text": "A portable dataclass from CPython 3.13+ in a format 1.2/1.3 stream does not load "
        "on 3.12 (`AttributeError: Can't get attribute '_replace' on <module 'dataclasses'>`): "
        "the generated `__replace__` travelled by reference to `dataclasses._replace` (fixed in "
        "format 1.4)",
        "where": "portable `dataclass`, producers 3.13 → consumer 3.12",
    },
    {
        "id": "intflag-iter-member",
        "phase": "load",
        "error": ("AttributeError", r"_iter_member_by_def_"),
        "applies": lambda obj, variant, producer, consumer, satchel: (
            obj == "enum"
            and _portable(variant)
            and _version(producer) >= (3, 11)
            and _version(consumer) < (3, 11)
        ),
        "fixed_in": _before("1.4"),
        "label": "IntFlag from 3.11+: `_iter_member_by_def_`",
        "text": "A portable `enum.IntFlag` class from CPython 3.11+ in a format 1.2/1.3 stream "
        "does not load on 3.9, 3.10 or PyPy 3.9 (`AttributeError: _iter_member_by_def_`): the "
        "class state carried the producer's `_iter_member_` (fixed in format 1.4)",
        "where": "portable `enum` (its IntFlag), producers 3.11+ → consumers 3.9, 3.10, PyPy 3.9",
    },
]
KNOWN_ISSUES_BY_ID = {issue["id"]: issue for issue in KNOWN_ISSUES}


def applies(issue, obj, variant, producer, consumer, satchel, stream_format):
    """Whether ``issue`` is expected for this outcome of a stream written in format
    ``stream_format`` ("1.3.0")."""
    fixed = issue.get("fixed_in")
    if fixed is not None and not fixed(stream_format):
        return False
    return issue["applies"](obj, variant, producer, consumer, satchel)


def known_issue(phase, obj, variant, producer, consumer, satchel, error, stream_format):
    """The known issue that explains an error ({"class", "message"}) met at ``phase``, or None.
    ``producer`` and ``consumer`` are dicts with "version" ([3, 11]); consumer is None for a
    dump. ``stream_format``: the format version the stream was written in."""
    if not isinstance(error, dict) or "class" not in error:
        return None
    for issue in KNOWN_ISSUES:
        cls, pattern = issue["error"]
        if issue["phase"] != phase or short_class(error["class"]) != cls:
            continue
        if re.search(pattern, error["message"]) and applies(
            issue, obj, variant, producer, consumer, satchel, stream_format
        ):
            return issue
    return None


# ---------------------------------------------------------------------------------------------
# The design's promises
# ---------------------------------------------------------------------------------------------


def expect_dump(obj, variant, producer):
    """What satchel promises for a dump: OK, or the reason key of the refusal. ``producer``
    has "live_generators": what its satchel reports (``satchel._satchel.LIVE_GENERATORS``: a
    frame layout "cpython-3.X", or why there is none)."""
    if obj == "generator_suspended":
        # Without a frame layout no mode pickles it, and the refusal says that (portable too).
        if not str(producer.get("live_generators")).startswith("cpython-"):
            return "dump-no-frame-layout"
        if variant.startswith("portable"):
            return "dump-started-generator"
    return OK


def expect_load(obj, stream, producer, consumer, satchel):
    """What satchel promises when ``consumer`` (with satchel installed or stdlib-only) loads
    ``stream`` (a battery manifest entry) from ``producer``. Interpreters are dicts with
    "impl", "version" ([3, 11]) and "bytecode" (interpreters.Interpreter.bytecode_key, as a
    list); "zstd" for the consumer (compression.zstd in its stdlib)."""
    if not stream.get("header"):
        return OK  # no header: the stdlib's own pickle of plain data or objects by reference
    if not satchel and not stream["standalone"]:
        return "needs-satchel-lean"  # the bootstrap module (and its check) is satchel's
    # The header's check runs now: the bootstrap is installed, or the stream carries it.
    # The header's mode: plain data dumped with compress=True has a header, but no bytecode.
    nonportable = stream.get("header_mode", stream["mode"]) == "nonportable"
    if nonportable and list(producer["bytecode"]) != list(consumer["bytecode"]):
        return "incompatible-interpreter"
    if stream.get("compress") and not satchel and not consumer.get("zstd"):
        return "needs-zstd"
    if obj == "generator_suspended" and not satchel:
        return "needs-satchel-generator"  # a frame is written by satchel's _resume_generator
    return OK
