"""Smoke check: a suspended generator pickled here resumes in a fresh interpreter."""

import subprocess
import sys

import satchel
from satchel import _satchel

print(sys.version.split()[0], _satchel.LIVE_GENERATORS)


def gen(n):
    total = 0
    for i in range(n):
        x = yield i * 10
        if x:
            total += x
    return total


g = gen(5)
print(next(g), next(g), g.send(7))
if not _satchel.LIVE_GENERATORS.startswith("cpython-"):
    # PyPy: refused by design; say how (the suite checks the message, tests/test_pypy.py).
    try:
        satchel.dumps(g)
    except satchel.PicklingError as exc:
        print("refused as expected:", exc)
        sys.exit(0)
    sys.exit("a started generator pickled where LIVE_GENERATORS says it cannot")
b = satchel.dumps(g)
out = subprocess.run(
    [
        sys.executable,
        "-c",
        "import pickle,sys; g=pickle.loads(sys.stdin.buffer.read()); print(list(g))",
    ],
    check=False,
    input=b,
    capture_output=True,
)
print(out.stdout, out.stderr[-500:], list(g))
