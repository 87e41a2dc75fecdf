"""The compat matrix's consumer: loads streams, each in a forked child, and checks them.

    python -I -S compat-matrix/consumer.py JOB.json  > RESULTS.json

Runs on every interpreter of the matrix, so it keeps to Python 3.9 and PyPy (stdlib only).
JOB: {"sys_path": [...], "satchel": bool, "numpy": bool, "loaders": ["pickle", "satchel"],
"timeout": seconds, "streams": [{"id", "path", "check", "expected", "key"}]} ("key": the hex key of a signed
stream, which satchel.loads gets, after checking that another key is refused).

Each (stream, loader) runs in a child forked from this process: a child that dies by a
signal (a crash), exits without a result, or outlives the timeout (a hang) is reported as
such, never taken for a result, and the next stream starts clean (no class tracker, no
bootstrap module left by an earlier stream). The parent imports only pickle, and satchel and
numpy where the job has them: each child would import them again otherwise.
A child's result: "ok", "wrong" (loaded, but the check's value differs), or "error" with the
exception's class and message and the phase ("load", or "use" when the check raised).
"""

import json
import os
import pickle
import select
import signal
import sys
import tempfile
import time


def describe(exc):
    cls = type(exc)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "message": str(exc)[:600]}


def normalize(value):
    return json.loads(json.dumps(value))


def child(stream, loader):
    try:
        with open(stream["path"], "rb") as f:
            data = f.read()
        if loader == "satchel" and stream.get("key"):
            import satchel

            # A signed stream: another key must be refused before anything runs, its own
            # key accepted (pickle.loads ignores the signature: the stdlib cannot check it).
            try:
                satchel.loads(data, key=b"not the key")
            except satchel.SignatureError:
                pass
            else:
                return {"status": "wrong", "got": "loaded with a wrong key"}
            obj = satchel.loads(data, key=bytes.fromhex(stream["key"]))
        elif loader == "satchel":
            import satchel

            obj = satchel.loads(data)
        else:
            obj = pickle.loads(data)
    except BaseException as exc:  # noqa: BLE001 (every failure is an outcome to record)
        return {"status": "error", "phase": "load", "error": describe(exc)}
    try:
        got = normalize(eval(compile(stream["check"], "<check>", "eval"), {"obj": obj}))
    except BaseException as exc:  # noqa: BLE001 (every failure is an outcome to record)
        return {"status": "error", "phase": "use", "error": describe(exc)}
    if got == stream["expected"]:
        return {"status": "ok"}
    return {"status": "wrong", "got": got}


def run_one(stream, loader, timeout, scratch):
    errpath = os.path.join(scratch, "stderr")
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.close(read_end)
            fd = os.open(errpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            try:  # a crash leaves the Python stack in the child's stderr
                import faulthandler

                faulthandler.enable()
            except Exception:  # noqa: BLE001 (every failure is an outcome to record)
                pass
            payload = json.dumps(child(stream, loader)).encode()
            while payload:
                payload = payload[os.write(write_end, payload) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks, deadline, hung = [], time.monotonic() + timeout, False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_end], [], [], remaining)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    try:
        with open(errpath, "rb") as f:
            stderr = f.read()[-1500:].decode("utf-8", "replace")
    except OSError:
        stderr = ""
    if hung:
        return {"status": "hang", "detail": f"no result after {timeout}s", "stderr": stderr}
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return {"status": "crash", "detail": f"killed by {name}", "stderr": stderr}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    if code != 0 or not chunks:
        return {"status": "crash", "detail": f"exit status {code}, no result", "stderr": stderr}
    return json.loads(b"".join(chunks).decode())


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    sys.path[:0] = job["sys_path"]
    import importlib.util

    env = {"python": sys.version.split()[0], "implementation": sys.implementation.name}
    spec = importlib.util.find_spec("satchel")
    env["satchel"] = spec.origin if spec else None
    env["bootstrap"] = bool(importlib.util.find_spec("_satchel_boot_1"))
    if job["satchel"]:
        if spec is None or not spec.origin.startswith(job["sys_path"][0]):
            raise SystemExit("satchel should come from {}: {!r}".format(job["sys_path"][0], env))
    elif spec is not None or env["bootstrap"]:
        raise SystemExit(f"a stdlib-only consumer can import satchel: {env!r}")
    # Imported once here, or every child would pay for it: numpy, and satchel where it is
    # installed (a receiver with satchel, such as a worker, has it imported already).
    if job.get("numpy"):
        import numpy

        env["numpy"] = numpy.__version__
    if job["satchel"]:
        import satchel  # noqa: F401
    results = {}
    scratch = tempfile.mkdtemp(prefix="satchel-consumer-")
    try:
        for stream in job["streams"]:
            results[stream["id"]] = {
                loader: run_one(stream, loader, job.get("timeout", 120), scratch)
                for loader in job["loaders"]
            }
    finally:
        for name in os.listdir(scratch):
            os.unlink(os.path.join(scratch, name))
        os.rmdir(scratch)
    json.dump({"env": env, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
