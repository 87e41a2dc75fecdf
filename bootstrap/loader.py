# Run by a standalone stream's header: exec(zlib.decompress(blob), {"V": FORMAT_VERSION}),
# where the blob starts with S = the bootstrap source and N = the parts of it the stream needs
# (python/satchel/_standalone.py). It installs the bootstrap as sys.modules["_satchel_boot_<major>"]
# so the body's constructors resolve with nothing but the stdlib, unless:
# - an installed satchel's is there or importable: it is never replaced (its check() then
#   refuses the stream clearly if it is too old);
# - one with this version or newer (same major, by its name) and these parts is there.
# A module an earlier stream installed is upgraded in place (S runs in it again), which keeps
# its class tracker. Stdlib only, Python 3.9+; every byte of it travels in each standalone
# stream, so it is terse.
import sys


def _satchel_install(S, V, N):
    name = "_satchel_boot_" + V.split(".")[0]
    m = sys.modules.get(name)
    try:
        if m is None:
            import importlib

            m = importlib.import_module(name)
        if getattr(m, "_satchel_installed", 0):
            return
        have = tuple(int(x) for x in m.FORMAT_VERSION.split(".")[:2])
        if have >= tuple(int(x) for x in V.split(".")[:2]) and set(N) <= m.PARTS:
            return
    except Exception:
        m = sys.modules.get(name)
    if m is None:
        import importlib.machinery
        import types

        m = types.ModuleType(name)
        # A spec that is not initializing makes the unpickler's lookups of the module cheaper.
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        m.__spec__._initializing = False
    exec(compile(S, "<satchel bootstrap %s>" % V, "exec"), m.__dict__)
    sys.modules[name] = m


_satchel_install(S, V, N)
