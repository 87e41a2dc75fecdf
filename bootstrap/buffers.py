# The constructor of compressed streams with out-of-band buffers (format 1.3; docs/FORMAT.md,
# "Compression"). Appended to boot.py (src/bootstrap.rs) like bytecode.py and portable.py, but
# never part of a standalone payload: only lean streams carry buffers, and a lean stream needs
# satchel on the receiver, whose Rust decoder this calls. ``load_zstd_buffers`` is wire format.

PARTS.add("buffers")  # noqa: F821 (boot.py)


def load_zstd_buffers(frame, *buffers):
    """The value of a compressed stream whose large buffers travel apart from its body: ``frame``
    is the body's zstd frame, each buffer ``(flags, itemsize, *chunk frames)``."""
    from satchel._satchel import zstd_load_buffers

    return zstd_load_buffers(frame, buffers)
