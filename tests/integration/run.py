#!/usr/bin/python3
"""run.py - esgate's integration tests.

    ESGATE_BUILD=build /usr/bin/python3 tests/integration/run.py [FILTER...]

Imports every tests/integration/test_*.py and runs each function named
test_*, each in a fresh temporary directory.  A test function takes one
argument, a harness.Context (or none); the context's teardown (stop esgate
with SIGTERM and require exit 0, stop esdemo, scan the log for crits and
sanitizer reports) runs after every test.  FILTER arguments keep only the
tests whose "module.function" name contains one of them.  Prints "PASS name
(1.2s)" or "FAIL name" and the traceback per test, then "N passed, N
failed"; exits 1 if anything failed.

Tests are independent (free ports, their own directories and processes), so
ESGATE_TEST_JOBS of them (default: one per CPU, at most 2) run at a time, each
in a forked process of this one.  A module that sets SERIAL = True (its tests
load the machine, or measure time, CPU or memory) has its tests run after
the others, one at a time and alone, in file order.
"""

import importlib
import inspect
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)

import harness  # noqa: E402


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(name, f) for name, f in vars(mod).items()
                 if name.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod.__name__]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        serial = bool(getattr(mod, "SERIAL", False))
        tests += [("%s.%s" % (mod.__name__, name), f, serial) for name, f in funcs]
    return tests


def run_one(name, func):
    """Runs one test; returns (passed, the text to print)."""
    tmpdir = tempfile.mkdtemp(prefix="esgate-it-")
    ctx = harness.Context(tmpdir)
    start = time.monotonic()
    error = None
    interrupted = False
    try:
        if inspect.signature(func).parameters:
            func(ctx)
        else:
            func()
    except KeyboardInterrupt:
        interrupted = True
        error = "interrupted\n"
    except BaseException:  # noqa: BLE001
        error = traceback.format_exc()
    try:
        ctx.teardown()  # its own failure message carries the log tails
    except Exception:  # noqa: BLE001
        error = (error or "") + traceback.format_exc()
    else:
        if error is not None:
            error += ctx.log_tails()
    if interrupted:
        raise KeyboardInterrupt
    elapsed = time.monotonic() - start
    if error is None:
        shutil.rmtree(tmpdir, ignore_errors=True)
        return True, "PASS %s (%.1fs)" % (name, elapsed)
    return False, "FAIL %s (%.1fs)  [files kept in %s]\n%s" % (name, elapsed, tmpdir, error.rstrip())


_TESTS = {}


def _run_named(name):
    """In a forked pool process: the test of that name."""
    return run_one(name, _TESTS[name])


def jobs():
    n = os.environ.get("ESGATE_TEST_JOBS")
    if n:
        return max(1, int(n))
    return max(1, min(2, len(os.sched_getaffinity(0))))


def main(argv):
    filters = argv[1:]
    for binary in (harness.ESGATE, harness.ESDEMO):
        if not os.access(binary, os.X_OK):
            print("missing %s (build it first; ESGATE_BUILD=%s)" % (binary, os.environ.get("ESGATE_BUILD", "build")))
            print("0 passed, 1 failed")
            return 1
    passed = failed = 0
    t0 = time.monotonic()
    chosen = [t for t in discover() if not filters or any(f in t[0] for f in filters)]
    _TESTS.update((name, func) for name, func, _ in chosen)
    together = [name for name, _, serial in chosen if not serial]
    alone = [name for name, _, serial in chosen if serial]
    results = []
    n = jobs()
    if n > 1 and len(together) > 1:
        # fork: the pool's processes have every test module imported already
        with multiprocessing.get_context("fork").Pool(n) as pool:
            for ok, text in pool.imap_unordered(_run_named, together):
                print(text, flush=True)
                results.append(ok)
    else:
        alone = together + alone
    for name in alone:
        ok, text = run_one(name, _TESTS[name])
        print(text, flush=True)
        results.append(ok)
    passed = results.count(True)
    failed = results.count(False)
    if passed + failed == 0:
        print("no test matches %s" % " ".join(filters))
    print("# %s, %.1fs total" % (harness.BUILD, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
