"""The red team's catalog of hostile objects (fuzz/hostile_cases/*.py), each dumped by satchel
and by cloudpickle in its own child process, with a timeout and a 3 GiB address-space limit.

    .venv/bin/python fuzz/hostile_run.py fuzz/hostile_cases/reduce.py [NAME-SUBSTRING...]
    PY=.interpreters/venv-3.15/bin/python .venv/bin/python fuzz/hostile_run.py FILE   # 3.15
    JOBS=2 (children at a time)  NOCP=1 (satchel only)

A case file holds ``CASES = {name: source}``. A source defines ``obj`` (what is dumped) and
may set ``KW`` (satchel.dumps keywords) and ``CHECK`` (an expression on the loaded ``o``, run
in a fresh interpreter that loads the stream with plain ``pickle.loads``). Each line says what
satchel (S=) and cloudpickle (C=) did: ``ok`` (and the loaded result), ``refused`` (a
PicklingError), ``refused-other`` (TypeError, ValueError, AttributeError, RecursionError),
``loadfail``, or a finding: ``SIGNAL``, ``HANG``, ``exc`` (another Exception), ``BASE`` (a
BaseException: a finding unless the case's own code raised it, as the KeyboardInterrupt and
SystemExit cases do; cloudpickle lets them through the same way). Flags: ``!!`` a possible
finding, ``FID`` satchel refuses what cloudpickle pickles, ``DIFF`` results differ (often
only an address).
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import textwrap

PRE = r"""
import sys, os, pickle, threading, types, resource, gc, json, subprocess
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
LIB = sys.argv[1]
if LIB == "satchel":
    import satchel as lib
else:
    import cloudpickle as lib
KW = {}
CHECK = None
def out(kind, detail=""):
    sys.stdout.write("\n@@" + json.dumps([kind, str(detail)[:600]]) + "\n"); sys.stdout.flush()
"""

LOADER = r"""
import pickle, sys, json
d = sys.stdin.buffer.read()
try:
    o = pickle.loads(d)
    o = eval(sys.argv[1]) if sys.argv[1] else o
except BaseException as e:
    print("\n@@" + json.dumps(["loadfail", type(e).__name__ + ": " + str(e)[:300]]))
else:
    print("\n@@" + json.dumps(["ok", repr(o)[:200]]))
"""

POST = r"""
try:
    data = lib.dumps(obj, **(KW if LIB == "satchel" else {}))
except pickle.PicklingError as e:
    out("refused", f"{type(e).__name__}: {e}")
except (TypeError, ValueError, AttributeError, RecursionError) as e:
    out("refused-other", f"{type(e).__module__}.{type(e).__name__}: {e}")
except Exception as e:
    out("exc", f"{type(e).__module__}.{type(e).__name__}: {e}")
except BaseException as e:
    out("BASE", f"{type(e).__module__}.{type(e).__name__}: {e}")
else:
    try:
        r = subprocess.run([sys.executable, "-c", LOADER, CHECK or ""], input=data,
                           capture_output=True, timeout=20)
        lines = [l for l in r.stdout.decode(errors="replace").splitlines() if l.startswith("@@")]
        if lines:
            out(*json.loads(lines[-1][2:]))
        else:
            out("loadcrash", f"rc={r.returncode} {r.stderr[-300:]!r}")
    except subprocess.TimeoutExpired:
        out("loadhang", "")
"""

BAD = ("HANG", "SIGNAL", "NOREPORT", "BASE", "exc", "loadcrash", "loadhang")


def run(src, lib, python, timeout=30):
    code = PRE + f"LOADER = {LOADER!r}\n" + textwrap.dedent(src) + "\n" + POST
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        r = subprocess.run([python, f.name, lib], capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ["HANG", f"> {timeout}s"]
    finally:
        os.unlink(f.name)
    stderr = r.stderr.decode(errors="replace")
    lines = [x for x in r.stdout.decode(errors="replace").splitlines() if x.startswith("@@")]
    if r.returncode < 0:
        return ["SIGNAL", f"{-r.returncode} {stderr[-400:]}"]
    if not lines:
        return ["NOREPORT", f"rc={r.returncode} {stderr[-500:]}"]
    return json.loads(lines[-1][2:])


def main():
    path, only = sys.argv[1], sys.argv[2:]
    python = os.environ.get("PY", sys.executable)
    ns = {}
    with open(path) as f:
        exec(f.read(), ns)  # noqa: S102 - the case files are this directory's own
    items = [(k, v) for k, v in ns["CASES"].items() if not only or any(o in k for o in only)]
    libs = ["satchel"] + ([] if os.environ.get("NOCP") else ["cloudpickle"])
    findings = 0
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("JOBS", "2"))) as ex:
        futs = {(n, lib): ex.submit(run, src, lib, python) for n, src in items for lib in libs}
        for name, _ in items:
            s = futs[(name, "satchel")].result()
            c = futs[(name, "cloudpickle")].result() if len(libs) > 1 else ["-", ""]
            flag = "!!" if s[0] in BAD else ""
            findings += bool(flag)
            if s[0].startswith("refused") and c[0] == "ok":
                flag += "FID"
            if s[0] == "ok" and c[0] == "ok" and s[1] != c[1]:
                flag += "DIFF"
            print(f"{flag:6} {name:45} S={s[0]}: {s[1][:300]}", flush=True)
            print(f"{'':52} C={c[0]}: {c[1][:200]}", flush=True)
    print(f"{len(items)} cases, {findings} flagged !!")


if __name__ == "__main__":
    main()
