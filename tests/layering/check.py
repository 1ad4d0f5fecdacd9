#!/usr/bin/python3
"""check.py - the layering of esgate's C sources, from their #include lines.

    /usr/bin/python3 tests/layering/check.py [--root DIR] [--self-test]

A module is a .c file and its .h (worker/cache.c and worker/cache.h are
worker/cache); module A uses module B when a file of A includes a header of
B ("..." includes, resolved against the including file's folder, then the
top of the tree, as the compiler does with -I.).  Fails (exit 1, one line a
problem) on:
  - a circle: modules that use each other, directly or through others
    (the files and the includes that make it are named);
  - lib/ including anything of master/ or worker/ (lib/ knows no role);
  - worker/ including anything of master/;
  - master/ including anything of worker/ but worker/worker.h, the worker's
    entry point, which itself includes nothing else of worker/;
  - a "..." include that names no file of the tree.
Prints "layering OK: ..." otherwise.  --self-test first runs the check on
small trees made to break each rule and fails unless it catches every one.
"""

import argparse
import os
import re
import sys
import tempfile

ROLES = ("lib", "master", "worker")
ENTRY = "worker/worker.h"
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    out = []
    for role in ROLES:
        d = os.path.join(root, role)
        if not os.path.isdir(d):
            continue
        for dirpath, _, files in os.walk(d):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def includes(root, path):
    """The files PATH includes with "...": (resolved path or None, as written)."""
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        text = f.read()
    # comments out, so an include in a comment is not one
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = []
    for name in INCLUDE.findall(text):
        for base in (os.path.dirname(path), ""):
            cand = os.path.normpath(os.path.join(base, name))
            if os.path.isfile(os.path.join(root, cand)):
                out.append((cand, name))
                break
        else:
            out.append((None, name))
    return out


def module(path):
    return os.path.splitext(path)[0]


def role(path):
    return path.split(os.sep, 1)[0]


def circles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    nodes = sorted(set(edges) | {m for ms in edges.values() for m in ms})

    def visit(v):
        # iterative, so that a long chain cannot exhaust Python's stack
        work = [(v, iter(sorted(edges.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def check(root):
    """The problems of the tree at ROOT, and (files, includes) counted."""
    problems = []
    files = sources(root)
    edges = {}     # module -> modules it uses
    why = {}       # (module, module) -> ["file includes header", ...]
    nincludes = 0
    for path in files:
        for target, written in includes(root, path):
            nincludes += 1
            if target is None:
                problems.append('%s: #include "%s" names no file of the tree' % (path, written))
                continue
            r_from, r_to = role(path), role(target)
            if r_to not in ROLES:
                continue
            if r_from == "lib" and r_to in ("master", "worker"):
                problems.append("%s includes %s: lib/ knows no role" % (path, target))
            if r_from == "worker" and r_to == "master":
                problems.append("%s includes %s: a worker knows nothing of the master" % (path, target))
            if r_from == "master" and r_to == "worker" and target != ENTRY:
                problems.append("%s includes %s: the master may use only the worker's entry point, %s" %
                                (path, target, ENTRY))
            if path == ENTRY and r_to == "worker" and target != ENTRY:
                problems.append("%s includes %s: the worker's entry point must not bring worker/ into the "
                                "master" % (path, target))
            a, b = module(path), module(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
                why.setdefault((a, b), []).append("%s includes %s" % (path, target))
    for comp in circles(edges):
        inside = set(comp)
        ties = ["; ".join(why[(a, b)]) for a in comp for b in sorted(edges.get(a, ())) if b in inside]
        problems.append("circle of %d modules: %s (%s)" % (len(comp), ", ".join(comp), "; ".join(ties)))
    return problems, len(files), nincludes


def write_tree(root, tree):
    for path, text in tree.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


def self_test():
    """Trees that break one rule each must each be caught; a clean one must pass."""
    clean = {
        "lib/a.h": "", "lib/a.c": '#include "a.h"\n',
        "worker/worker.h": '#include "lib/a.h"\n', "worker/worker.c": '#include "worker/worker.h"\n#include "worker/x.h"\n',
        "worker/x.h": '#include "lib/a.h"\n', "worker/x.c": '#include "worker/x.h"\n',
        "master/m.c": '#include "worker/worker.h"\n/* #include "worker/x.h" in a comment is not one */\n',
    }
    broken = {
        "a circle of two": {"worker/x.c": '#include "worker/x.h"\n#include "worker/y.h"\n',
                            "worker/y.c": '#include "worker/y.h"\n#include "worker/x.h"\n', "worker/y.h": ""},
        "a circle of three, through headers": {"worker/y.h": '#include "worker/z.h"\n',
                                               "worker/z.h": '#include "worker/x.h"\n',
                                               "worker/x.h": '#include "worker/y.h"\n'},
        "lib/ including worker/": {"lib/a.c": '#include "a.h"\n#include "../worker/x.h"\n'},
        "lib/ including master/": {"master/n.h": "", "lib/a.c": '#include "master/n.h"\n'},
        "master/ past the entry point": {"master/m.c": '#include "worker/x.h"\n'},
        "the entry point bringing worker/ along": {"worker/worker.h": '#include "worker/x.h"\n'},
        "worker/ including master/": {"master/n.h": "", "worker/x.c": '#include "master/n.h"\n'},
        "an include of nothing": {"worker/x.c": '#include "worker/nope.h"\n'},
    }
    failed = []
    with tempfile.TemporaryDirectory(prefix="esgate-layering-") as tmp:
        root = os.path.join(tmp, "clean")
        write_tree(root, clean)
        problems, _, _ = check(root)
        if problems:
            failed.append("the clean tree was refused: %s" % problems)
        for i, (name, change) in enumerate(sorted(broken.items())):
            root = os.path.join(tmp, "broken%d" % i)
            tree = dict(clean)
            tree.update(change)
            write_tree(root, tree)
            problems, _, _ = check(root)
            if not problems:
                failed.append("not caught: %s" % name)
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        failed = self_test()
        for f in failed:
            print("layering self-test: %s" % f)
        if failed:
            return 1
    problems, nfiles, nincludes = check(os.path.normpath(args.root))
    for p in problems:
        print("layering: %s" % p)
    if problems:
        return 1
    print("layering OK: %d files of %s, %d includes, no circle" % (nfiles, "/ ".join(ROLES) + "/", nincludes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
