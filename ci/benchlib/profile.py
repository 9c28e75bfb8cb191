"""ci/bench --profile: one workload on one engine under perf or callgrind."""
import re
import signal
import subprocess
import time
from pathlib import Path
from .config import BENCH_DIR, BY_KEY, CACHE, PLUGIN_SNAPSHOT
from .util import HarnessError, fmt_seconds, say, sh
from .dataset import DELETE_SQL, SCAN_SQL, UPDATE_SQL, create_sql, make_dataset
from .workloads import Bench


def start_under_valgrind(server, outfile):
    """start_server's steps (ci/lib.sh), with mariadbd under callgrind and a longer wait."""
    d = server.dir
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "data" / "mysql").is_dir():
        r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={d}/data",
                            f"--user={sh(['id', '-un'])}",
                            "--auth-root-authentication-method=normal"],
                           capture_output=True, text=True)
        if r.returncode:
            raise HarnessError("mariadb-install-db failed:\n" + r.stdout + r.stderr)
    plugin_dir = PLUGIN_SNAPSHOT
    (d / "tmp").mkdir(exist_ok=True)   # its own (see ci/lib.sh start_server)
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={outfile}",
           "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={d}/data", f"--tmpdir={d}/tmp", f"--socket={d}/sock",
           f"--pid-file={d}/pid", "--skip-networking", f"--plugin-dir={plugin_dir}",
           f"--log-error={d}/error.log", f"--user={sh(['id', '-un'])}",
           f"--secure-file-priv={d}", *server.options,
           # valgrind cannot reserve InnoDB's default 8 TB of address space, nor do AIO
           f"--innodb-buffer-pool-size-max={CACHE}", "--innodb-use-native-aio=0"]
    log = open(d / "valgrind.log", "ab")
    p = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    server.pgid = p.pid
    for _ in range(1800):
        if p.poll() is not None:
            raise HarnessError(f"mariadbd under valgrind exited (see {d}/valgrind.log)")
        if subprocess.run(server.client() + ["-e", "SELECT 1"], capture_output=True).returncode == 0:
            server.pid = p.pid
            return p
        time.sleep(0.5)
    raise HarnessError("mariadbd under valgrind did not answer in 15 minutes")


def profile(args, mode):
    w = args.profile
    e = BY_KEY[args.engine]
    b = Bench(args, mode)
    p = b.p
    if args.profiler == "callgrind":
        p["timeout"] = max(p["timeout"], 3600)
    b.tsv, b.sql, b.meta = make_dataset(p["rows"], args.seed, p["batch"])
    outdir = BENCH_DIR / "profile"
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"{e.key}-{w}"
    srv = b.server
    srv.wipe()
    if args.profiler == "callgrind":
        out = Path(f"{stem}.callgrind.out")
        for old in outdir.glob(f"{out.name}*"):
            old.unlink()
        say("starting mariadbd under valgrind --tool=callgrind (slow)")
        start_under_valgrind(srv, out)
    else:
        srv.start()
    srv.install_plugins()
    ok, why = b.probe(e)
    if not ok:
        say(f"{e.label}: not available in this build ({why})")
        return
    db = f"bench_{e.key}"
    if w == "insert":
        srv.run("DROP TABLE IF EXISTS t", db)
        srv.run(create_sql(e), db)
        stmt = f"source {b.sql}"
    elif w == "load_data":
        srv.run("DROP TABLE IF EXISTS t", db)
        srv.run(create_sql(e), db)
        stmt = f"LOAD DATA INFILE '{b.tsv}' INTO TABLE t CHARACTER SET utf8mb4;"
    else:
        o = b.load(e, db, 0, timed=False)
        if not o.ok:
            raise HarnessError(f"loading the table failed: {o.why()}")
        if w == "update" and args.profiler == "perf":
            # as in the benchmark: the UPDATE runs on a fresh server, after one read
            say("restarting the server and reading the table once, as the benchmark's UPDATE does")
            srv.stop()
            srv.start()
            srv.install_plugins()
            c = srv.run("SELECT COUNT(*), SUM(k) FROM t", db, timeout=p["timeout"])
            if not c.ok:
                raise HarnessError(f"reading the table after the restart failed: {c.why()}")
        stmt = {"scan": SCAN_SQL, "update": UPDATE_SQL, "delete": DELETE_SQL}[w] + ";"
    say(f"profiling {e.label} {w} with {args.profiler}")
    if args.profiler == "callgrind":
        subprocess.run(["callgrind_control", "-i", "on", str(srv.pid)], capture_output=True)
        o = srv.timed(stmt, db, p["timeout"])
        subprocess.run(["callgrind_control", "-i", "off", str(srv.pid)], capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(srv.pid)], capture_output=True)
        srv.stop()
        dumps = sorted(outdir.glob(f"{e.key}-{w}.callgrind.out*"))

        def events(f):      # the dump taken right after the statement holds its events
            n = re.findall(r"^(?:summary|totals): *(\d+)", f.read_text(errors="replace"), re.M)
            return max(map(int, n), default=0)
        best = max(dumps, key=events) if dumps else out
        report = sh(["callgrind_annotate", str(best)], timeout=600)
        Path(f"{stem}.callgrind.txt").write_text(report)
        say(f"statement: {o.kind} {fmt_seconds(o.seconds) if o.ok else o.why()} (under valgrind)")
        say(f"wrote {best} (the statement's events) and {stem}.callgrind.txt; "
            f"explore with: callgrind_annotate {best} | less, or kcachegrind")
        print("\n".join(report.splitlines()[:40]))
    else:
        data = Path(f"{stem}.perf.data")
        perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,32768", "-F", "999", "-p", str(srv.pid),
                                 "-o", str(data)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        try:
            o = srv.timed(stmt, db, p["timeout"])
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                _, perr = perf.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                perf.kill()
                perr = ""
        srv.stop()
        if perf.returncode not in (0, -2, 130) or not data.exists():
            raise HarnessError(f"perf record failed: {perr.strip()[-800:]}")
        report = sh(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                     "--percent-limit", "0.5", "--sort", "dso,symbol"], timeout=600)
        Path(f"{stem}.perf.txt").write_text(report)
        say(f"statement: {o.kind} {fmt_seconds(o.seconds) if o.ok else o.why()}")
        say(f"wrote {data} and {stem}.perf.txt; explore with: perf report -i {data}")
        print("\n".join([l for l in report.splitlines() if l.strip() and not l.startswith("#")
                        and "%" in l][:40]))
