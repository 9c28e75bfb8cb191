"""The benchmark proper: the engines' rounds of table workloads, the UPDATE and
sysbench, and the raw figures (build/bench/raw.json)."""
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from .config import (
    BENCH_DIR, BY_KEY, ENGINES, Engine, LOCK_COUNTERS, MODES, PAIRS, PER_REP, RAW_FORMAT,
    SB_WRITE_TESTS, SERVER_OPTIONS, SHORT, SHOWN_VARIABLES, WORKLOADS, sb_workload,
    sysbench_runs)
from .util import HarnessError, fmt_value, loadavg, note, say
from .build import BUILT
from .dataset import DELETE_SQL, SCAN_SQL, UPDATE_SQL, create_sql, make_dataset
from .server import Outcome, Server


@dataclass
class Figures:
    samples: list = field(default_factory=list)
    failures: list = field(default_factory=list)   # {rep, kind, msg}
    wrong: list = field(default_factory=list)      # results that disagree with the data
    errors: list = field(default_factory=list)     # sysbench: lock errors of each run
                                                   # (see lock_errors)

    def summary(self):
        if not self.samples:
            return None
        s = sorted(self.samples)
        return dict(median=statistics.median(s), min=s[0], max=s[-1], n=len(s))


def parse_sysbench(out):
    """sysbench's run output: transactions, their rate, and the errors it ignored (and
    retried: by default 1213 deadlock, 1205 lock wait timeout, 1020 record changed).
    None for what the output does not say."""
    def grab(pattern, conv):
        m = re.search(pattern, out)
        return conv(m.group(1)) if m else None
    return dict(transactions=grab(r"transactions:\s+(\d+)", int),
                tps=grab(r"transactions:\s+\d+\s+\(([\d.]+) per sec", float),
                ignored=grab(r"ignored errors:\s+(\d+)", int))


def parse_counters(out, spec):
    """The lock counters of one engine from lock_counter_sql()'s output (source, name,
    value lines; value NULL for a metric that is not enabled): (deadlocks, lock wait
    timeouts), None for one not counted."""
    got = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip().isdigit():
            got[(parts[0], parts[1].lower())] = int(parts[2])
    return tuple(got.get((src, name.lower())) for src, name in spec)


def lock_counter_sql(spec):
    status = ",".join(f"'{n.upper()}'" for src, n in spec if src == "status") or "''"
    metric = ",".join(f"'{n}'" for src, n in spec if src == "metric") or "''"
    return ("SELECT 'status', VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
            f"WHERE VARIABLE_NAME IN ({status}) UNION ALL "
            "SELECT 'metric', NAME, IF(ENABLED, COUNT, NULL) FROM information_schema.INNODB_METRICS "
            f"WHERE NAME IN ({metric})")


def lock_errors(rep, ignored, before, after, fatal=False):
    """One sysbench run's errors: deadlocks and lock wait timeouts from the engine's
    counters read before and after it (None: not counted, or the counters went back: a
    restarted server); `other`: the errors sysbench ignored that those two do not
    explain (1020, or a kind the engine does not count), plus 1 if sysbench stopped on
    an error it does not ignore (`fatal`)."""
    def delta(i):
        if before is None or after is None or before[i] is None or after[i] is None:
            return None
        d = after[i] - before[i]
        return d if d >= 0 else None
    dl, lt = delta(0), delta(1)
    other = None
    if ignored is not None:
        other = max(0, ignored - (dl or 0) - (lt or 0))
    if fatal:
        other = (other or 0) + 1
    return dict(rep=rep, ignored=ignored, deadlocks=dl, lock_wait_timeouts=lt, other=other)


@dataclass
class EngineRun:
    """What one engine carries from one round to the next."""
    e: Engine
    db: str
    skip: set = field(default_factory=set)      # workloads it refused: not asked again
    updates: object = None      # UPDATEs applied to the UPDATE phase's table; None: load it
    peaks: list = field(default_factory=list)   # VmHWM (KiB) of each server it ran on
    bases: list = field(default_factory=list)   # VmRSS of each, fresh with plugins
    restarts: int = 0           # the server's restart count when its round began
    restarted: bool = False     # a server was restarted during one of its rounds


class Bench:
    def __init__(self, args, mode):
        self.args = args
        self.mode = mode
        self.p = dict(MODES[mode])
        for k in ("rows", "reps", "timeout"):
            if getattr(args, k, None):
                self.p[k] = getattr(args, k)
        if args.rows and mode == "quick":
            self.p["sb_rows"] = min(self.p["sb_rows"], args.rows)
        self.results = {}        # engine -> workload -> Figures
        self.available = {}      # engine -> (bool, message)
        self.scan_results = {}
        self.schedule = "interleaved"   # how the engines' repetitions were ordered
        self.sb_seconds = None          # how long the sysbench part took
        self.server = Server(BENCH_DIR, SERVER_OPTIONS)
        self.started = time.monotonic()
        self.load_at_start = loadavg()

    def fig(self, engine, workload):
        return self.results.setdefault(engine, {}).setdefault(workload, Figures())

    # -- progress ---------------------------------------------------------------------
    def progress(self, engine, workload, rep, text):
        el = time.monotonic() - self.started
        print(f"[{el:6.0f}s] {BY_KEY[engine].label:<20} {SHORT.get(workload, workload):<14} "
              f"rep {rep}/{self.p['reps']}  {text}", file=sys.stderr, flush=True)

    def record(self, engine, workload, rep, o, value=None, expect_rows=None):
        f = self.fig(engine, workload)
        if o.ok and expect_rows is not None and o.rows != expect_rows:
            o = Outcome("wrong", o.out, f"{o.rows} rows affected, expected {expect_rows}")
        if o.ok:
            v = o.seconds if value is None else value
            f.samples.append(v)
            self.progress(engine, workload, rep, fmt_value(WORKLOADS[workload][1], v))
        elif o.kind == "wrong":
            f.wrong.append(f"rep {rep}: {o.err}")
            self.progress(engine, workload, rep, f"WRONG RESULT ({o.err}): sample discarded")
        else:
            f.failures.append(dict(rep=rep, kind=o.kind, msg=o.why()))
            self.progress(engine, workload, rep, f"{o.kind.upper()}: {o.why()}")

    # -- one engine -------------------------------------------------------------------
    def probe(self, e):
        """Is this engine (or RUST layout) available in this build? CREATE TABLE tells."""
        db = f"bench_{e.key}"
        self.server.run(f"DROP DATABASE IF EXISTS {db}", timeout=self.p["timeout"])
        o = self.server.run(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        if not o.ok:
            raise HarnessError(f"CREATE DATABASE {db} failed: {o.why()}")
        o = self.server.run(f"CREATE TABLE probe (id INT NOT NULL) {e.clause}", db)
        if not o.ok:
            return False, o.why()
        self.server.run("DROP TABLE probe", db)
        o = self.server.run(create_sql(e), db)
        if not o.ok:
            return False, "it refuses the benchmark's table: " + o.why()
        self.server.run("DROP TABLE t", db)
        return True, ""

    def fresh_table(self, e, db):
        o = self.server.run("DROP TABLE IF EXISTS t", db, timeout=self.p["timeout"])
        if o.ok:
            o = self.server.run(create_sql(e), db)
        return o

    def expect(self, o, db, rows=None, check=None, want=None):
        """A timed statement that went well is a sample only if it did what it should:
        ROW_COUNT() as expected, and `check` (a query run after it) gives `want`."""
        if o.ok and rows is not None and o.rows != rows:
            return Outcome("wrong", o.out, f"{o.rows} rows affected, expected {rows}")
        if o.ok and check:
            c = self.server.run(check, db, timeout=self.p["timeout"])
            if not c.ok:
                return Outcome(c.kind, c.out, f"checking the table afterwards: {c.why()}")
            if c.out.strip() != want:
                return Outcome("wrong", o.out, f"{check} gave {c.out.strip()!r}, expected {want!r}")
        return o

    def load(self, e, db, rep, timed=True):
        o = self.fresh_table(e, db)
        if not o.ok:
            return o
        o = self.server.timed(f"LOAD DATA INFILE '{self.tsv}' INTO TABLE t CHARACTER SET utf8mb4;",
                              db, self.p["timeout"])
        o = self.expect(o, db, rows=self.meta["rows"])
        if timed:
            self.record(e.key, "load_data", rep, o)
        return o

    def table_bytes(self, db):
        d = BENCH_DIR / "data" / db
        total = 0
        for f in d.iterdir() if d.is_dir() else []:
            if f.name.startswith("t.") or f.name.startswith("t#"):
                total += f.stat().st_size
        return total

    # -- one engine's round -----------------------------------------------------------
    def want(self, w):
        return not self.args.workloads or w in self.args.workloads

    def fresh_server(self, st):
        """A new server process for one engine's round (same data folder, same
        settings), so that its peak memory is this engine's alone."""
        srv = self.server
        srv.stop()
        srv.start()
        srv.install_plugins()
        srv.reset_peak()
        st.restarts = srv.restarts
        st.bases.append(srv.memory().get("VmRSS", 0))

    def end_server(self, st):
        """The round's server has done its work: its peak is one of the engine's."""
        srv = self.server
        hwm = srv.memory().get("VmHWM", 0)
        if hwm:
            st.peaks.append(hwm)
        if srv.restarts > st.restarts:
            st.restarted = True
        if not st.peaks:
            return
        # the engine's figure: the highest peak of the servers it ran on so far
        f = self.fig(st.e.key, "memory")
        f.samples[:] = [max(st.peaks)]
        f.failures[:] = [dict(rep=0, kind="partial", msg=(
            "the server was restarted during one of this engine's rounds: the peak covers "
            "every process, a crashed one up to its last reading"))] if st.restarted else []
        self.results[st.e.key]["memory_baseline"] = min(st.bases)
        self.results[st.e.key]["memory_rounds"] = list(st.peaks)

    def round_tables(self, st, rep):
        """Repetition `rep` of the engine's table workloads, on a fresh server:
        multi-row INSERT into a new table; then LOAD DATA into a new table, its size,
        the scan and the DELETE on it."""
        e, db, srv, m, T = st.e, st.db, self.server, self.meta, self.p["timeout"]
        want = self.want
        skip = st.skip
        self.fresh_server(st)
        if want("insert"):
            o = self.fresh_table(e, db)
            if o.ok:
                o = srv.timed(f"source {self.sql}", db, T)
            o = self.expect(o, db, check="SELECT COUNT(*), SUM(k) FROM t",
                            want=f"{m['rows']}\t{m['sum_k']}")
            self.record(e.key, "insert", rep, o)
        o = self.load(e, db, rep, timed=True)
        loaded = o.ok
        if loaded:
            srv.run("FLUSH TABLES t", db, timeout=T)
            n = self.table_bytes(db)
            self.record(e.key, "size", rep, Outcome("ok", seconds=n) if n else Outcome(
                "error", err=f"no files named t.* in {BENCH_DIR / 'data' / db}"))
        for w in ("scan", "delete"):
            if w in skip or not want(w):
                continue
            if not loaded:
                o = self.load(e, db, rep, timed=False)
                if not o.ok:
                    self.record(e.key, w, rep, Outcome(o.kind, o.out, "reloading the table: " + o.why()))
                    continue
                loaded = True
            if w == "scan":
                o = srv.timed(SCAN_SQL + ";", db, T)
                if o.ok and o.out.strip() != m["scan"]:
                    o = Outcome("wrong", o.out, f"result {o.out.strip()!r}, expected {m['scan']!r}")
            else:
                o = srv.timed(DELETE_SQL + ";", db, T)
                o = self.expect(o, db, rows=m["delete_rows"],
                                check="SELECT COUNT(*), SUM(id) FROM t",
                                want=f"{m['rows'] - m['delete_rows']}\t{m['sum_id_after_delete']}")
            self.record(e.key, w, rep, o)
            if o.kind == "refused":
                skip.add(w)
                note(f"{e.label} refuses {w}; not asked again")
            if not o.ok:
                loaded = False
        srv.run("DROP TABLE IF EXISTS t", db, timeout=T)
        self.end_server(st)

    def round_update(self, st, rep):
        """Repetition `rep` of the UPDATE, on a fresh server, on the table loaded for
        this phase in its first round (loaded again only after a failure). The table is
        read once, untimed, before it: that checks it came through the restart as left
        and warms the caches as the previous UPDATE's check did when the phase ran on
        one server."""
        e, db, srv, m, T = st.e, st.db, self.server, self.meta, self.p["timeout"]
        if "update" in st.skip or not self.want("update"):
            return
        total = lambda n: f"{m['rows']}\t{m['sum_k'] + n * m['update_rows']}"
        self.fresh_server(st)
        try:
            if st.updates is None:
                o = self.load(e, db, rep, timed=False)
                if not o.ok:
                    self.record(e.key, "update", rep, Outcome(o.kind, o.out, "loading the table: " + o.why()))
                    return
                st.updates = 0
            c = srv.run("SELECT COUNT(*), SUM(k) FROM t", db, timeout=T)
            if not c.ok or c.out.strip() != total(st.updates):
                o = (Outcome(c.kind, c.out, "reading the table before the UPDATE: " + c.why())
                     if not c.ok else
                     Outcome("wrong", c.out, f"before the UPDATE (fresh server), the table gave "
                                             f"{c.out.strip()!r}, expected {total(st.updates)!r}"))
                self.record(e.key, "update", rep, o)
                st.updates = None
                return
            o = srv.timed(UPDATE_SQL + ";", db, T)
            o = self.expect(o, db, rows=m["update_rows"], check="SELECT COUNT(*), SUM(k) FROM t",
                            want=total(st.updates + 1))
            self.record(e.key, "update", rep, o)
            st.updates = st.updates + 1 if o.ok else None
            if o.kind == "refused":
                st.skip.add("update")
                note(f"{e.label} refuses update; not asked again")
        finally:
            self.end_server(st)

    # -- sysbench (needs a primary key: BTREE vs InnoDB) ------------------------------
    def want_sysbench(self, e):
        if not e.sysbench or self.args.no_sysbench:
            return False
        if self.args.workloads and not any(w.startswith("sb_") for w in self.args.workloads):
            return False
        if e.ours:
            return True
        # the peer's figures are only worth their time when ours can be compared
        ours = [p.ours for p in PAIRS if p.peer == e.key]
        return self.args.sysbench or any(self.available.get(k, (False,))[0] for k in ours)

    def sysbench_cmd(self, e, test, *extra):
        srv = self.server
        return ["sysbench", test, "--db-driver=mysql", f"--mysql-socket={srv.sock}",
                "--mysql-user=root", f"--mysql-db=sb_{e.key}", "--tables=1",
                f"--table-size={self.p['sb_rows']}", "--auto_inc=off",
                f"--mysql-storage-engine={e.sysbench}", "--rand-type=uniform",
                "--rand-seed=1", *extra]

    def lock_counters(self, e):
        """(deadlocks, lock wait timeouts) of the engine so far; None where not counted."""
        spec = LOCK_COUNTERS.get(e.key)
        if not spec:
            return None
        o = self.server.run(lock_counter_sql(spec), timeout=30)
        return parse_counters(o.out, spec) if o.ok else None

    def run_sysbench(self, engines):
        """sysbench for engines compared with each other, on one fresh server, their runs
        interleaved (ours, peer, then peer, ours: the order turns round every
        repetition) so that load from elsewhere on the machine falls on both alike.
        The read-only tests first, then the writing ones on the same table (they change
        rows, not their number: checked after each writing run). Each run's lock errors
        are counted (sysbench's ignored errors, the engine's lock counters)."""
        srv = self.server
        T = self.p["timeout"]
        t0 = time.monotonic()
        runs = sysbench_runs(self.p.get("sb_write_threads", []))
        srv.stop()
        srv.start()
        srv.install_plugins()
        ready = []
        count = {}              # engine -> rows the table should have
        for e in engines:
            say(f"{e.label}: sysbench prepare ({self.p['sb_rows']:,} rows) and "
                f"{self.p['sb_warmup']} s of warm-up")
            srv.run(f"DROP DATABASE IF EXISTS sb_{e.key}", timeout=T)
            o = srv.run(f"CREATE DATABASE sb_{e.key}")
            if o.ok:
                o = srv.execute(self.sysbench_cmd(e, "oltp_read_only", "prepare"), timeout=T)
            if o.ok:    # sysbench 1.0 has no --warmup-time: one untimed run instead
                o = srv.execute(self.sysbench_cmd(e, "oltp_read_only", "--threads=2",
                                                  f"--time={self.p['sb_warmup']}", "run"),
                                timeout=self.p["sb_warmup"] + 120)
            if o.ok:
                ready.append(e)
                count[e.key] = self.p["sb_rows"]
                continue
            note(f"sysbench prepare failed for {e.label}: {o.why()}")
            for test, threads in runs:
                self.fig(e.key, sb_workload(test, threads)).failures.append(
                    dict(rep=0, kind=o.kind, msg="sysbench prepare: " + o.why()))
        for rep in range(1, self.p["reps"] + 1):
            for test, threads in runs:
                w = sb_workload(test, threads)
                for e in (list(ready) if rep % 2 else ready[::-1]):
                    before = self.lock_counters(e)
                    o = srv.execute(self.sysbench_cmd(e, test, f"--threads={threads}",
                                                      f"--time={self.p['sb_time']}", "run"),
                                    timeout=self.p["sb_time"] + 120)
                    if o.kind == "crash":
                        self.record(e.key, w, rep, o)
                        note(f"{e.label}: the sysbench table went with the server; no more "
                             "sysbench for it")
                        ready.remove(e)
                        continue
                    sb = parse_sysbench(o.out)
                    if o.kind in ("ok", "error"):
                        errs = lock_errors(rep, sb["ignored"], before, self.lock_counters(e),
                                           fatal=o.kind == "error")
                        self.fig(e.key, w).errors.append(errs)
                        if any(errs[k] for k in ("deadlocks", "lock_wait_timeouts", "other")):
                            note(f"{e.label} {SHORT[w]} rep {rep}: "
                                 + ", ".join(f"{errs[k]} {k.replace('_', ' ')}"
                                             for k in ("deadlocks", "lock_wait_timeouts", "other")))
                    if o.ok:
                        if sb["tps"] and sb["transactions"]:
                            o.seconds = sb["tps"]
                        else:       # no figure, but not a fault of the engine's by itself
                            o = Outcome("no_tx", o.out, "no transactions in sysbench's output")
                    if test in SB_WRITE_TESTS and o.kind in ("ok", "no_tx", "error"):
                        c = srv.run("SELECT COUNT(*) FROM sbtest1", f"sb_{e.key}", timeout=T)
                        n = c.out.strip()
                        if c.ok and n != str(count[e.key]):
                            o = Outcome("wrong", o.out,
                                        f"sbtest1 has {n} rows after {test}, expected "
                                        f"{count[e.key]}" + ("" if o.kind != "error" else
                                                             f" (sysbench: {o.why()})"))
                            count[e.key] = int(n) if n.isdigit() else count[e.key]
                    self.record(e.key, w, rep, o)
        for e in engines:
            srv.run(f"DROP DATABASE IF EXISTS sb_{e.key}", timeout=T)
        self.sb_seconds = time.monotonic() - t0
        say(f"sysbench: {self.sb_seconds:.0f} s")

    # -- the whole run ----------------------------------------------------------------
    def run(self):
        p = self.p
        self.tsv, self.sql, self.meta = make_dataset(p["rows"], self.args.seed, p["batch"])
        say(f"scratch server in {BENCH_DIR} (a fresh one per engine and round, same settings)")
        self.server.wipe()
        self.server.start()
        self.server.install_plugins()
        # once more: a plugin's command-line options apply when it loads at start-up,
        # not at INSTALL PLUGIN
        self.server.stop()
        self.server.start()
        self.settings = self.settings_report()
        for k, v in self.settings.items():
            note(f"{k} = {v}")
        engines = [BY_KEY[k] for k in (self.args.engines or [e.key for e in ENGINES])]
        runs = []
        for e in engines:
            ok, why = self.probe(e)
            self.available[e.key] = (ok, why)
            if not ok:
                say(f"{e.label}: not available in this build ({why})")
            else:
                runs.append(EngineRun(e, f"bench_{e.key}"))
        for e in engines:
            if self.available[e.key][0]:
                say(f"{e.label}: {p['reps']} repetition(s) of "
                    f"{', '.join(w for w in PER_REP if self.want(w) or w == 'load_data')}"
                    + (" (sysbench at the end)" if self.want_sysbench(e) else ""))
        self.save_raw()
        # Repetition r of every engine, then repetition r + 1 of every engine, in the
        # opposite order: machine drift over minutes falls on every engine alike, and no
        # engine always goes first. First the table workloads, then the UPDATE (last for
        # every engine: MariaDB's CSV engine corrupts its memory in it and takes the next
        # statements down with it; each round has its own server, so nothing follows an
        # UPDATE on the server it ran on).
        for phase, step in (("table workloads", self.round_tables),
                            ("UPDATE", self.round_update)):
            if phase == "UPDATE" and not self.want("update"):
                break
            for rep in range(1, p["reps"] + 1):
                order = runs if rep % 2 else runs[::-1]
                if order:
                    say(f"{phase}, round {rep}/{p['reps']}: "
                        + ", ".join(st.e.label for st in order))
                for st in order:
                    step(st, rep)
                    self.save_raw()
        for st in runs:
            if st.peaks:
                note(f"{st.e.label}: peak server RSS {max(st.peaks) / 1024:.1f} MB, the highest "
                     f"of its {len(st.peaks)} servers' peaks "
                     f"({', '.join(f'{x / 1024:.0f}' for x in st.peaks)} MB; fresh server with "
                     f"plugins: {min(st.bases) / 1024:.1f} MB)")
        if runs:        # the tables kept for the UPDATE, on a server no engine's round used
            self.server.stop()
            self.server.start()
            for st in runs:
                self.server.run(f"DROP DATABASE IF EXISTS {st.db}", timeout=p["timeout"])
        sb = [e for e in engines if self.available.get(e.key, (False,))[0] and self.want_sysbench(e)]
        if sb:
            self.run_sysbench(sb)
            self.save_raw()
        self.server.stop()

    def raw(self):
        return {e: {w: (dict(samples=f.samples, failures=f.failures, wrong=f.wrong,
                             errors=f.errors)
                        if isinstance(f, Figures) else f)
                    for w, f in ws.items()} for e, ws in self.results.items()}

    def save_raw(self):
        """Everything measured so far, after each engine's round: a run is never lost to
        a problem in the reporting (ci/bench --report FILE writes the reports again).
        Format 3 adds each figure's `errors` (sysbench's lock errors per run) and
        `sysbench_s`; format 2 adds `schedule` and each engine's `memory_rounds`; format 1
        (no `format` key) ran each engine to completion in turn, its memory from one
        server."""
        (BENCH_DIR / "raw.json").write_text(json.dumps(dict(
            format=RAW_FORMAT, schedule=self.schedule, mode=self.mode, p=self.p, seed=self.args.seed, meta=self.meta,
            settings=getattr(self, "settings", {}), built=BUILT,
            available={k: list(v) for k, v in self.available.items()},
            events=self.server.events, raw=self.raw(), load_at_start=self.load_at_start,
            sysbench_s=self.sb_seconds,
            duration=time.monotonic() - self.started), indent=1, ensure_ascii=False))

    @classmethod
    def from_raw(cls, args, path):
        d = json.loads(Path(path).read_text())
        b = cls(args, d["mode"])
        b.p, b.meta, b.settings = d["p"], d["meta"], d["settings"]
        if d.get("format", 1) > RAW_FORMAT:
            raise HarnessError(f"{path} is raw.json format {d['format']}; this ci/bench reads "
                               f"up to {RAW_FORMAT}")
        b.schedule = d.get("schedule", "per engine")
        b.args.seed = d["seed"]
        BUILT.update(d["built"])
        b.available = {k: tuple(v) for k, v in d["available"].items()}
        b.server.events = d["events"]
        b.load_at_start = d["load_at_start"]
        b.sb_seconds = d.get("sysbench_s")
        b.started = time.monotonic() - d["duration"]
        for e, ws in d["raw"].items():
            for w, f in ws.items():
                b.results.setdefault(e, {})[w] = (Figures(f["samples"], f["failures"], f["wrong"],
                                                          f.get("errors", []))
                                                  if isinstance(f, dict) else f)
        return b

    def settings_report(self):
        names = ",".join(f"'{v}'" for v in SHOWN_VARIABLES)
        out = self.server.query(
            "SELECT LOWER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
            f"WHERE LOWER(VARIABLE_NAME) IN ({names}) OR VARIABLE_NAME LIKE 'RUST%' "
            "ORDER BY VARIABLE_NAME")
        got = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        order = SHOWN_VARIABLES + sorted(k for k in got if k.startswith("rust"))
        return {k: got[k] for k in order if k in got}
