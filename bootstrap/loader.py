# Run by a standalone stream's header: exec(zlib.decompress(blob), {"V": FORMAT_VERSION}),
# where the blob starts with S = the bootstrap source and N = the parts of it the stream needs
# (python/satchel/_standalone.py). It installs the bootstrap as
# sys.modules["_satchel_boot_<major>"] unless a compatible one is already there or importable
# (an installed satchel), so the body's constructors resolve with nothing but the stdlib.
# Stdlib only, Python 3.9+ (it runs on every interpreter a portable stream targets).
import sys


def _satchel_install(S, V, N):
    name = "_satchel_boot_" + V.split(".")[0]
    need = tuple(int(x) for x in V.split(".")[:2])

    def fits(m):
        try:
            version = tuple(int(x) for x in m.FORMAT_VERSION.split(".")[:2])
            return version[0] == need[0] and version >= need and set(N) <= m.PARTS
        except Exception:
            return False

    m = sys.modules.get(name)
    if m is None:
        try:
            import importlib

            m = importlib.import_module(name)
        except Exception:
            m = None
    if m is not None and fits(m):
        return
    import types

    m = types.ModuleType(name)
    exec(compile(S, "<satchel bootstrap %s>" % V, "exec"), m.__dict__)
    sys.modules[name] = m


_satchel_install(S, V, N)
