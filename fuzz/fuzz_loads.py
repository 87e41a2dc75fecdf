"""atheris target: ``satchel.inspect``, ``satchel.loads`` and ``satchel.loads(key=...)`` on
mutated satchel streams (seeds: fuzz/corpus/loads, from make_corpus.py). Contracts: checks.py.

    .venv/bin/python fuzz/fuzz_loads.py WORKDIR fuzz/corpus/loads \\
        -max_total_time=300 -timeout=10 -rss_limit_mb=3072

Unsigned loads of a nonportable stream whose marshalled code was damaged may run that
bytecode and crash CPython (fuzz/README.md). SATCHEL_FUZZ_INTACT_CODE=1 skips the unsigned
load of exactly those inputs (inspect and the signed checks still run), so the run explores
everything else and any crash it finds is a finding against satchel.
"""

import faulthandler
import os
import sys

import atheris
import checks

INTACT = checks.signed_seeds()
INTACT_CODE = checks.intact_code() if os.environ.get("SATCHEL_FUZZ_INTACT_CODE") else None
_started = []
_counts = [0, 0]  # inputs, inputs whose unsigned load was skipped (damaged code)


def TestOneInput(data):
    if not _started:
        # After libFuzzer's own handlers: a crash prints the Python stack, then libFuzzer's
        # handler (chained) writes the artifact.
        faulthandler.enable()
        _started.append(True)
    _counts[0] += 1
    if _counts[0] & (_counts[0] - 1) == 0 and _counts[0] >= 1024:
        print(f"satchel: {_counts[0]} inputs, {_counts[1]} with damaged code", file=sys.stderr)
    checks.check_inspect(data)
    checks.check_signed(data, INTACT)
    checks.check_printed()
    if INTACT_CODE is not None and checks.damaged_code(data, INTACT_CODE):
        _counts[1] += 1
        return
    checks.check_loads(data)
    checks.check_printed()


if __name__ == "__main__":
    checks.install()
    checks.limit_memory()
    atheris.instrument_all()  # coverage of the Python side: bootstrap, satchel, pickle helpers
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
