"""String-key workloads (issue 18; `ci/bench --string-keys`): RUST BTREE beside InnoDB
on one server in the same run, on tables keyed by strings:

- `ci`:  (id INT PRIMARY KEY, v VARCHAR(64) utf8mb4_general_ci NOT NULL, pad INT, KEY kv (v))
- `bin`: the same with v in utf8mb4_bin
- `spk`: (v VARCHAR(64) utf8mb4_general_ci PRIMARY KEY, n INT, pad INT, KEY kn (n)):
         a string primary key, repeated in every entry of kn

Values are mixed-case words and a number (`Alpha-00012345`), in an order unrelated to
the primary key. Figures: the index's size (INDEX_LENGTH after ANALYZE TABLE; for
`spk` data and index, as the primary key is the clustered index and kn repeats it),
and the median of the repetitions' server-side times of: point lookups through the
string index (a batch of SELECT pad ... WHERE v = ...: the row is read), range scans
through it (SUM(pad) over BETWEEN), covering range scans (`SELECT v FROM t WHERE v
BETWEEN ...`, index only), and for `spk` covering reads of the primary key from kn.
The section it writes goes into docs/benchmarks.md between markers, which the main
report keeps when it is written again (report.py)."""
import datetime
import random
import statistics
import time
from .config import BENCH_DIR, SERVER_OPTIONS
from .server import Server
from .util import HarnessError, loadavg, say

BEGIN, END = "<!-- string-keys:begin -->", "<!-- string-keys:end -->"
ENGINES = [("rust", "RUST LAYOUT=BTREE", "ENGINE=RUST"), ("innodb", "InnoDB", "ENGINE=InnoDB")]
# range scans a workload (see workloads)
RANGES = 400
WORDS = ["Alpha", "beta", "GAMMA", "delta", "Epsilon", "zeta", "ETA", "theta"]


def value(i, rows):
    # a permutation of 0..rows-1 (7919 is prime, rows a multiple of 1000): unique values
    # whose order has nothing to do with i
    j = (i * 7919) % rows
    return f"{WORDS[j % len(WORDS)]}-{j:08d}"


def tables(rows):
    v = "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE {}"
    word = "ELT(1 + ((seq * 7919) % {r}) % 8, " + ", ".join(f"'{w}'" for w in WORDS) + ")"
    val = f"CONCAT({word.format(r=rows)}, '-', LPAD((seq * 7919) % {rows}, 8, '0'))"
    out = {}
    for name, coll in (("ci", "utf8mb4_general_ci"), ("bin", "utf8mb4_bin")):
        out[name] = (f"CREATE TABLE t_{name} (id INT NOT NULL PRIMARY KEY, v {v.format(coll)} NOT NULL, "
                     f"pad INT NOT NULL, KEY kv (v)) {{clause}}",
                     f"INSERT INTO t_{name} SELECT seq, {val}, seq % 1000 FROM seq_1_to_{rows}")
    out["spk"] = (f"CREATE TABLE t_spk (v {v.format('utf8mb4_general_ci')} NOT NULL PRIMARY KEY, "
                  f"n INT NOT NULL, pad INT NOT NULL, KEY kn (n)) {{clause}}",
                  f"INSERT INTO t_spk SELECT {val}, seq, seq % 1000 FROM seq_1_to_{rows}")
    return out


def workloads(rows, rng):
    """(table, key, label, statement) of each timed workload."""
    pts = [value(rng.randrange(rows), rows) for _ in range(2000)]
    # RANGES ranges of about 0.5% of the rows each (one word's values between two
    # numbers), so that a repetition takes long enough to time: one query took
    # about a millisecond, mostly the round trip, and 50 of them (30-40 ms) left
    # the medians within the noise of a shared machine (ratios moved by 0.1
    # between runs of the same build)
    span = rows // 25
    ranges = []
    for _ in range(RANGES):
        lo = rng.randrange(rows - span)
        w = WORDS[rng.randrange(len(WORDS))]
        ranges.append((f"{w}-{lo:08d}", f"{w}-{lo + span:08d}", lo))
    out = []
    for t in ("ci", "bin"):
        probe = [p if t == "bin" else p.upper() if i % 2 else p.lower() for i, p in enumerate(pts)]
        out += [
            (t, "point", "2000 point lookups through KEY (v) (row read)",
             "\n".join(f"SELECT pad FROM t_{t} WHERE v = '{p}';" for p in probe)),
            (t, "range", f"{RANGES} range scans through KEY (v): SUM(pad) over v BETWEEN",
             "\n".join(f"SELECT SUM(pad), COUNT(*) FROM t_{t} FORCE INDEX (kv) WHERE v BETWEEN '{a}' AND '{b}';"
                       for a, b, _ in ranges)),
            (t, "covering", f"{RANGES} covering range scans: SELECT v ... WHERE v BETWEEN",
             "\n".join(f"SELECT v FROM t_{t} WHERE v BETWEEN '{a}' AND '{b}';" for a, b, _ in ranges)),
        ]
    out += [
        ("spk", "point", "2000 point lookups by the string primary key",
         "\n".join(f"SELECT pad FROM t_spk WHERE v = '{p}';" for p in pts)),
        ("spk", "range", f"{RANGES} range scans of the string primary key: SUM(pad) over v BETWEEN",
         "\n".join(f"SELECT SUM(pad), COUNT(*) FROM t_spk WHERE v BETWEEN '{a}' AND '{b}';"
                   for a, b, _ in ranges)),
        ("spk", "covering", f"{RANGES} covering reads of the primary key from KEY (n): SELECT v ... WHERE n BETWEEN",
         "\n".join(f"SELECT v FROM t_spk FORCE INDEX (kn) WHERE n BETWEEN {lo} AND {lo + rows // 200};"
                   for _, _, lo in ranges)),
    ]
    return out


def run(rows=200_000, reps=5, timeout=600, out_md=None):
    rows = max(1000, rows // 1000 * 1000)
    rng = random.Random(18)
    server = Server(BENCH_DIR, SERVER_OPTIONS)
    started = time.monotonic()
    load0 = loadavg()
    server.wipe()
    server.start()
    res = {}       # (table, key, engine) -> [seconds] / bytes
    plans = {}
    try:
        server.install_plugins()
        for eng, _label, clause in ENGINES:
            db = f"strkeys_{eng}"
            server.query(f"DROP DATABASE IF EXISTS {db}")
            server.query(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
            for t, (create, fill) in tables(rows).items():
                server.query(create.format(clause=clause), db)
                o = server.timed(fill + ";", db, timeout)
                if not o.ok:
                    raise HarnessError(f"{eng} {t}: {o.why()}")
                res[(t, "load", eng)] = [o.seconds]
                server.query(f"ANALYZE TABLE t_{t}", db, timeout)
                idx, data = server.query(
                    f"SELECT INDEX_LENGTH, DATA_LENGTH FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't_{t}'").split("\t")
                res[(t, "size", eng)] = int(idx) + (int(data) if t == "spk" else 0)
        wl = workloads(rows, rng)
        for t, key, _label, stmt in wl:
            for eng, _l, _c in ENGINES:
                first = stmt.split(";")[0]
                plans[(t, key, eng)] = server.query(f"EXPLAIN {first}", f"strkeys_{eng}").split("\n")[-1]
        for rep in range(reps):
            for t, key, _label, stmt in wl:
                order = ENGINES if rep % 2 == 0 else ENGINES[::-1]
                for eng, _l, _c in order:
                    f = BENCH_DIR / f"strkeys-{t}-{key}.sql"
                    f.write_text(stmt + "\n")
                    o = server.timed(f"source {f}", f"strkeys_{eng}", timeout)
                    if not o.ok:
                        raise HarnessError(f"{eng} {t} {key}: {o.why()}")
                    res.setdefault((t, key, eng), []).append(o.seconds)
            say(f"string keys: repetition {rep + 1}/{reps} done")
    finally:
        server.stop(patience=20)
    minutes = (time.monotonic() - started) / 60
    md = report(rows, reps, wl, res, plans, load0, loadavg(), minutes)
    if out_md:
        put_section(out_md, md)
    return md


def report(rows, reps, wl, res, plans, load0, load1, minutes):
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    names = {"ci": "VARCHAR(64) utf8mb4_general_ci, KEY (v)", "bin": "VARCHAR(64) utf8mb4_bin, KEY (v)",
             "spk": "VARCHAR(64) utf8mb4_general_ci PRIMARY KEY, KEY (n)"}
    L = [BEGIN, "## String keys (issue 18)", "",
         f"Generated by `ci/bench --string-keys` on {now} in {minutes:.1f} minutes "
         f"(load average {load0} at the start, {load1} at the end: the machine was shared); "
         f"do not edit by hand, re-run it. RUST LAYOUT=BTREE (tree format 6) and InnoDB "
         f"on one server, {rows:,} rows per table, median of {reps} repetitions (min–max), "
         "engines alternating in each repetition. Size: INDEX_LENGTH after ANALYZE TABLE "
         "(for the string primary key table, data and index). Speed: InnoDB's time / "
         "RUST's (above 1.00× RUST is faster). Targets: size ≤ 1.20×, speed ≥ 1.00×.", "",
         "| table | workload | RUST | InnoDB | ratio | target | | EXPLAIN's Extra (RUST / InnoDB) |",
         "|---|---|---|---|---|---|---|---|"]
    for t in ("ci", "bin", "spk"):
        r, i = res[(t, "size", "rust")], res[(t, "size", "innodb")]
        ok = r / i <= 1.2
        L.append(f"| {names[t]} | index size | {r / 2**20:.2f} MiB | {i / 2**20:.2f} MiB | "
                 f"{r / i:.2f}× the size | ≤ 1.20× | {'**met**' if ok else '**not met**'} | |")
        for tt, key, label, _s in wl:
            if tt != t:
                continue
            rs, is_ = res[(t, key, "rust")], res[(t, key, "innodb")]
            mr, mi = statistics.median(rs), statistics.median(is_)
            ratio = mi / mr if mr else float("inf")
            ok = ratio >= 1.0
            ex = lambda e: (plans[(t, key, e)].split("\t") + [""] * 10)[9] or "-"
            L.append(f"| {names[t]} | {label} | {mr:.3f} s ({min(rs):.3f}–{max(rs):.3f}) | "
                     f"{mi:.3f} s ({min(is_):.3f}–{max(is_):.3f}) | {ratio:.2f}× faster | ≥ 1.00× | "
                     f"{'**met**' if ok else '**not met**'} | {ex('rust')} / {ex('innodb')} |")
    L += ["", END]
    return "\n".join(L)


def put_section(path, md):
    """The section in place of the previous one (or at the end)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + md + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + md + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def keep_section(old_text, new_text):
    """report.py: the string-key section of the old file carried into the new one."""
    if BEGIN in old_text and END in old_text and BEGIN not in new_text:
        a, b = old_text.index(BEGIN), old_text.index(END) + len(END)
        return new_text.rstrip("\n") + "\n\n" + old_text[a:b] + "\n"
    return new_text
