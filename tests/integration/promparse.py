"""promparse.py - a strict parser of the Prometheus text exposition format
0.0.4 (Python 3 stdlib only), for checking esgate's /metrics.

    fams = parse(text)            # raises ParseError on anything off-format
    value(fams, "esgate_requests_total", route="/", code="2xx")

Stricter than Prometheus itself, on purpose (it is a test oracle):
  * lines end with "\\n" (the last one too); no "\\r"; fields are separated
    by exactly one space; empty lines and "# other" comments are ignored,
  * "# HELP name text" (escapes \\\\ and \\n only) at most once per family,
  * "# TYPE name counter|gauge|histogram|summary|untyped" once per family,
    before any of its samples; every sample belongs to a TYPEd family,
  * a family's lines form one group (no coming back to it later),
  * sample: name[{label="value",...}] value [timestamp]; label values
    escape only \\\\, \\" and \\n; no duplicate label names or series;
    values are decimal floats/ints, +Inf, -Inf or NaN; counters are >= 0,
  * histograms: name_bucket (with le; le strictly increasing, counts
    cumulative non-decreasing, the last le="+Inf"), name_sum, name_count
    with _count == the +Inf bucket, per label set; nothing else,
  * summaries: name{quantile=...}, name_sum, name_count.
"""

import math
import re

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
INT_RE = re.compile(r"-?[0-9]+\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(ValueError):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help = None
        self.samples = []  # (sample name, {label: value}, float value)
        self.series = set()

    def __repr__(self):
        return "Family(%s %s, %d samples)" % (self.name, self.type, len(self.samples))


def parse_value(s, where=""):
    """A sample value: decimal float/int, +Inf, -Inf or NaN."""
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s)
    if not FLOAT_RE.match(s):
        raise ParseError("%sbad value %r" % (where, s))
    return float(s)


def _unescape_help(s, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\n":
                raise ParseError("%sbad escape in HELP text %r" % (where, s))
            out.append("\\" if s[i + 1] == "\\" else "\n")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(line, i, where):
    """LINE[i] is "{": returns ({name: value}, index after "}")."""
    labels = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_NAME_RE.match(line, i)
        if not m:
            raise ParseError("%sbad label name at column %d" % (where, i + 1))
        lname = m.group(0)
        if lname.startswith("__"):
            raise ParseError("%sreserved label name %r" % (where, lname))
        if lname in labels:
            raise ParseError("%sduplicate label %r" % (where, lname))
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError("%sexpected =\" after label %r" % (where, lname))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise ParseError("%sunterminated value of label %r" % (where, lname))
            c = line[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt == "\\":
                    val.append("\\")
                elif nxt == '"':
                    val.append('"')
                elif nxt == "n":
                    val.append("\n")
                else:
                    raise ParseError("%sbad escape \\%s in label %r" % (where, nxt, lname))
                i += 2
                continue
            val.append(c)
            i += 1
        labels[lname] = "".join(val)
        if i < len(line) and line[i] == ",":
            i += 1  # a trailing comma before "}" is allowed by the format
            continue
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        raise ParseError("%sexpected , or } after label %r" % (where, lname))


def _family_of(name, fams):
    """The TYPEd family a sample name belongs to, or None."""
    if name in fams and fams[name].type is not None:
        f = fams[name]
        if f.type == "histogram":
            return None  # a histogram has no bare sample
        return f
    for suffix, types in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        if name.endswith(suffix):
            base = fams.get(name[:-len(suffix)])
            if base is not None and base.type in types:
                return base
    return None


def parse(text):
    """Parses TEXT (str, or bytes that must be UTF-8); returns {family name: Family},
    in order of appearance.  Raises ParseError on anything off-format."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError("not UTF-8: %s" % e)
    if text and not text.endswith("\n"):
        raise ParseError("the last line does not end with a newline")
    if "\r" in text:
        raise ParseError("carriage return in the text")
    fams = {}
    closed = set()
    current = None

    def enter(fam, where):
        nonlocal current
        if current is fam:
            return
        if fam.name in closed:
            raise ParseError("%smetric family %r comes back after other families" % (where, fam.name))
        if current is not None:
            closed.add(current.name)
        current = fam

    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        where = "line %d: " % lineno
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 2 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME_RE.match(parts[2]):
                    raise ParseError("%sbad metric name in %s line: %r" % (where, parts[1], line))
                name = parts[2]
                fam = fams.setdefault(name, Family(name))
                enter(fam, where)
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise ParseError("%ssecond HELP for %r" % (where, name))
                    fam.help = _unescape_help(parts[3] if len(parts) > 3 else "", where)
                else:
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ParseError("%sbad TYPE line %r" % (where, line))
                    if fam.type is not None:
                        raise ParseError("%ssecond TYPE for %r" % (where, name))
                    if fam.samples:
                        raise ParseError("%sTYPE for %r after its samples" % (where, name))
                    # a histogram's or summary's sample names must not be families of their own
                    if parts[3] in ("histogram", "summary"):
                        for sfx in ("_bucket", "_sum", "_count"):
                            if name + sfx in fams:
                                raise ParseError("%s%r clashes with family %r" % (where, name, name + sfx))
                    for sfx in ("_bucket", "_sum", "_count"):
                        base = fams.get(name[:-len(sfx)]) if name.endswith(sfx) else None
                        if base is not None and base.type in ("histogram", "summary"):
                            raise ParseError("%s%r clashes with %s %r" % (where, name, base.type, base.name))
                    fam.type = parts[3]
                continue
            if line.startswith("# ") or line == "#":
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    raise ParseError("%sbad %s line %r" % (where, parts[1], line))
                continue  # a plain comment
            raise ParseError("%sbad comment line %r" % (where, line))
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
        if not m:
            raise ParseError("%sbad metric name: %r" % (where, line))
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ParseError("%sexpected one space before the value: %r" % (where, line))
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or "" in rest:
            raise ParseError("%sexpected \"value [timestamp]\": %r" % (where, line))
        v = parse_value(rest[0], where)
        if len(rest) == 2 and not INT_RE.match(rest[1]):
            raise ParseError("%sbad timestamp %r" % (where, rest[1]))
        fam = _family_of(sname, fams)
        if fam is None:
            raise ParseError("%ssample %r has no TYPE line for its family" % (where, sname))
        enter(fam, where)
        key = (sname, tuple(sorted(labels.items())))
        if key in fam.series:
            raise ParseError("%sduplicate series %s%s" % (where, sname, labels))
        fam.series.add(key)
        if fam.type == "counter" and not v >= 0:
            raise ParseError("%scounter %s%s has value %r" % (where, sname, labels, rest[0]))
        if fam.type == "summary" and sname == fam.name and "quantile" not in labels:
            raise ParseError("%ssummary sample %s without a quantile label" % (where, sname))
        if fam.type == "histogram" and sname.endswith("_bucket") and "le" not in labels:
            raise ParseError("%shistogram bucket without le: %s%s" % (where, sname, labels))
        fam.samples.append((sname, labels, v))

    for fam in fams.values():
        if fam.type is None:
            raise ParseError("%r has HELP but no TYPE" % fam.name)
        if fam.type == "histogram":
            _check_histogram(fam)
        elif fam.type == "summary":
            _check_summary(fam)
    return fams


def _group(fam, sname, drop=None):
    out = {}
    for n, labels, v in fam.samples:
        if n == sname:
            key = tuple(sorted((k, x) for k, x in labels.items() if k != drop))
            out.setdefault(key, []).append((labels, v))
    return out


def _check_histogram(fam):
    n = fam.name
    buckets = _group(fam, n + "_bucket", drop="le")
    sums = _group(fam, n + "_sum")
    counts = _group(fam, n + "_count")
    if not buckets:
        raise ParseError("histogram %r has no buckets" % n)
    if set(sums) != set(buckets) or set(counts) != set(buckets):
        raise ParseError("histogram %r: label sets of _bucket %s, _sum %s, _count %s differ" % (
            n, sorted(buckets), sorted(sums), sorted(counts)))
    for key, bs in buckets.items():
        prev_le, prev_v = -math.inf, 0.0
        for labels, v in bs:  # in order of appearance
            le_s = labels["le"]
            le = parse_value(le_s, "histogram %r: le " % n)
            if math.isnan(le) or le <= prev_le:
                raise ParseError("histogram %r%s: le %r not increasing" % (n, dict(key), le_s))
            if math.isnan(v) or v < prev_v or v != int(v):
                raise ParseError("histogram %r%s: bucket le=%r count %r not cumulative" % (n, dict(key), le_s, v))
            prev_le, prev_v = le, v
        if bs[-1][0]["le"] != "+Inf":
            raise ParseError("histogram %r%s: last bucket is le=%r, not \"+Inf\"" % (n, dict(key), bs[-1][0]["le"]))
        count = counts[key][0][1]
        if count != bs[-1][1]:
            raise ParseError("histogram %r%s: _count %r != +Inf bucket %r" % (n, dict(key), count, bs[-1][1]))


def _check_summary(fam):
    n = fam.name
    sums, counts = _group(fam, n + "_sum"), _group(fam, n + "_count")
    if set(sums) != set(counts):
        raise ParseError("summary %r: _sum and _count label sets differ" % n)
    for key, qs in _group(fam, n, drop="quantile").items():
        if key not in sums:
            raise ParseError("summary %r%s: quantiles without _sum/_count" % (n, dict(key)))
        for labels, _ in qs:
            q = parse_value(labels["quantile"], "summary %r: quantile " % n)
            if not 0 <= q <= 1:
                raise ParseError("summary %r: quantile %r out of [0, 1]" % (n, labels["quantile"]))


def value(fams, sample, **labels):
    """The value of the one series SAMPLE{LABELS} (exact label set), or
    raises KeyError."""
    want = tuple(sorted(labels.items()))
    for fam in fams.values():
        for n, ls, v in fam.samples:
            if n == sample and tuple(sorted(ls.items())) == want:
                return v
    raise KeyError("no series %s%s" % (sample, labels))


def samples(fams, sample):
    """[(labels, value)] of every series named SAMPLE."""
    return [(ls, v) for fam in fams.values() for n, ls, v in fam.samples if n == sample]
