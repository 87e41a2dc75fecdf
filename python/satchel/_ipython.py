"""The IPython extension: ``%load_ext satchel`` adds the line magic ``%satchel``.

    %satchel save [--portable] [--strict] [--no-compress] PATH
    %satchel load PATH

``save`` snapshots the user namespace with :func:`satchel.dump_session`, ``load`` restores one
with :func:`satchel.load_session`; each prints a short summary (how many objects, the file
size, what was skipped and why). Paths may be quoted and may start with ``~``.
"""

import os
import shlex

USAGE = """\
%satchel save [--portable] [--strict] [--no-compress] PATH   snapshot the user namespace
%satchel load PATH                                            restore a snapshot"""

_SAVE_FLAGS = {"--portable", "--strict", "--no-compress"}


def _usage_error(message):
    try:
        from IPython.core.error import UsageError
    except ImportError:  # pragma: no cover - the magic only runs inside IPython
        UsageError = ValueError  # noqa: N806
    return UsageError(f"{message}\n{USAGE}")


def _parse(line):
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise _usage_error(f"%satchel: {exc}") from None
    if not words or words[0] not in ("save", "load"):
        raise _usage_error("%satchel: expected 'save' or 'load'")
    command, rest = words[0], words[1:]
    flags = {w for w in rest if w.startswith("--")}
    paths = [w for w in rest if not w.startswith("--")]
    allowed = _SAVE_FLAGS if command == "save" else set()
    unknown = sorted(flags - allowed)
    if unknown:
        raise _usage_error(f"%satchel {command}: unknown option {unknown[0]}")
    if len(paths) != 1:
        raise _usage_error(f"%satchel {command}: expected one PATH")
    return command, os.path.expanduser(paths[0]), flags


def satchel_magic(line):
    """``%satchel save PATH`` / ``%satchel load PATH``: snapshot or restore the session."""
    from satchel._session import dump_session, load_session

    command, path, flags = _parse(line)
    if command == "save":
        report = dump_session(
            path,
            strict="--strict" in flags,
            mode="portable" if "--portable" in flags else "nonportable",
            compress="--no-compress" not in flags,
        )
    else:
        report = load_session(path)
    print(report)


def load_ipython_extension(ipython):
    """``%load_ext satchel``."""
    ipython.register_magic_function(satchel_magic, magic_kind="line", magic_name="satchel")


def unload_ipython_extension(ipython):
    """``%unload_ext satchel``: removes the ``%satchel`` magic."""
    ipython.magics_manager.magics["line"].pop("satchel", None)
