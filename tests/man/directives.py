#!/usr/bin/python3
"""directives.py - every configuration key is in esgate.yaml(5).

    /usr/bin/python3 tests/man/directives.py [--self-test]

Takes each key of lib/config.c's directive tables (the lines that open
with {"name", CONFIG_T_...) and requires man/esgate.yaml.5 to name it
with the Ic macro: an entry (".It Ic a , b Ar boolean") or a key
described within another's (".Ic allow and .Ic hide").  Prints the keys
it never names and exits 1; else one line, exit 0.
--self-test first shows that a key left out of the page is caught."""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KEY = re.compile(r'^\s*\{"([a-z0-9_]+)", CONFIG_T_', re.M)
IC = re.compile(r"^\..*?\bIc (.*)$", re.M)


def keys(config_c):
    return sorted(set(KEY.findall(config_c)))


def documented(page):
    names = set()
    for line in IC.findall(page):
        # "a , b , c Ar boolean": the names up to the next macro
        for word in line.split():
            if re.fullmatch(r"[A-Z][a-z]", word):
                break
            if re.fullmatch(r"[a-z0-9_]+", word):
                names.add(word)
    return names


def missing(config_c, page):
    have = documented(page)
    return [k for k in keys(config_c) if k not in have]


def main(argv):
    with open(os.path.join(ROOT, "lib", "config.c")) as f:
        config_c = f.read()
    with open(os.path.join(ROOT, "man", "esgate.yaml.5")) as f:
        page = f.read()
    if "--self-test" in argv:
        gone = re.sub(r"\bpipeline_depth\b", "something_else", page)
        if missing(config_c, gone) != ["pipeline_depth"]:
            print("directives self-test: a key left out of the page was not caught: %s" % missing(config_c, gone))
            return 1
    ks = keys(config_c)
    if len(ks) < 100:
        print("directives: only %d keys found in lib/config.c: its table's lines changed shape" % len(ks))
        return 1
    out = missing(config_c, page)
    if out:
        print("man/esgate.yaml.5 never names (Ic) these configuration keys: %s" % ", ".join(out))
        return 1
    print("man/esgate.yaml.5 names all %d configuration keys" % len(ks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
