"""atheris target: signed streams (seeds: fuzz/corpus/signed). Hard requirement: every input
that is not an intact signed stream is ``SignatureError`` from ``loads(data, key=...)`` before
anything runs, and ``inspect`` runs nothing (checks.py). Nothing unsigned is loaded here.

    .venv/bin/python fuzz/fuzz_signed.py WORKDIR fuzz/corpus/signed \
        -max_total_time=300 -timeout=10 -rss_limit_mb=2048
"""

import sys

import atheris
import checks

INTACT = checks.signed_seeds()


def TestOneInput(data):
    checks.check_inspect(data)
    checks.check_signed(data, INTACT)


if __name__ == "__main__":
    checks.install()
    checks.limit_memory()
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
