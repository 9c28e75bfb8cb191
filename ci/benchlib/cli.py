"""ci/bench: the RUST engine's layouts side by side with MariaDB's own engines.

    ci/bench --quick              small data (20k rows, 3 repetitions): a few minutes;
                                  writes build/bench-out/ (never dirties the tree)
    ci/bench                      full mode (1,000,000 rows, 5 repetitions); writes
                                  docs/benchmarks.md, docs/bench/*.png, docs/bench/results.json
    ci/bench --profile WORKLOAD   one workload on one engine under perf or callgrind
    ci/bench --help               every option

Builds ha_rust.so (ci/lib.sh's build_plugin), starts a scratch stock mariadbd in
build/bench (ci/lib.sh's start_server) with the RUST plugin and MariaDB's CSV,
ARCHIVE, InnoDB, MyISAM and Aria engines, loads one deterministic seeded data set
into each engine and times the workloads. The engines take turns, one repetition
each per round (a fresh server per engine and round), so that drift of the machine
over minutes falls on all of them alike. Every statement runs under a client-side
time limit; a server that dies or hangs is reported, replaced by a fresh one, and the
run carries on. Exits 0 whenever it ran, whatever the figures; non-zero only when the
harness itself broke (build, server start, plugin install). Python standard library
only; charts by gnuplot.
"""
import argparse
import datetime
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from .config import BENCH_DIR, BUILD, BY_KEY, LIB, ROOT, SHORT
from .util import HarnessError, Interrupted, on_signal, say
from .build import BUILT, note_build, snapshot_plugin
from .workloads import Bench, Figures
from .report import print_summary, write_reports
from .profile import profile


def parse_args(argv=None):
    """The command line, checked; returns (args, mode)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="small data set, 3 repetitions; "
                    "writes build/bench-out/ instead of docs/")
    ap.add_argument("--rows", type=int, help="rows in the data set (default: 20000 quick, 1000000 full)")
    ap.add_argument("--reps", type=int, help="repetitions (default: 3 quick, 5 full)")
    ap.add_argument("--timeout", type=int, help="time limit of one statement in seconds")
    ap.add_argument("--seed", type=int, default=20240611, help="data set seed")
    ap.add_argument("--engines", type=lambda s: s.split(","),
                    help="comma-separated subset of: " + ",".join(BY_KEY))
    ap.add_argument("--workloads", type=lambda s: s.split(","),
                    help="comma-separated subset of: scan,update,delete,insert,sb "
                         "(LOAD DATA always runs: the others need its table)")
    ap.add_argument("--sysbench", action="store_true",
                    help="run sysbench for InnoDB even when RUST BTREE is not available")
    ap.add_argument("--no-sysbench", action="store_true", help="skip sysbench")
    ap.add_argument("--out", type=Path, help="output folder (default: build/bench-out "
                    "quick, docs full); benchmarks.md goes there and charts in its bench/")
    ap.add_argument("--no-build", action="store_true", help="use the ha_rust.so already built")
    ap.add_argument("--string-keys", action="store_true",
                    help="only the string-key workloads (RUST BTREE beside InnoDB; --rows, "
                         "default 200000, --reps, default 5): their section of "
                         "docs/benchmarks.md (or --out's), see ci/benchlib/strkeys.py")
    ap.add_argument("--report", metavar="RAW_JSON", type=Path,
                    help="only write the reports again from a run's build/bench/raw.json")
    ap.add_argument("--strict", action="store_true",
                    help="exit 3 if a RUST layout gave a wrong result, crashed or hung the "
                         "server (never for a figure or a missed target)")
    ap.add_argument("--profile", metavar="WORKLOAD",
                    choices=["load_data", "insert", "scan", "update", "delete"],
                    help="profile one workload instead of benchmarking")
    ap.add_argument("--engine", default="rust_csv", choices=list(BY_KEY),
                    help="the engine --profile uses (default rust_csv)")
    ap.add_argument("--profiler", default="perf", choices=["perf", "callgrind"])
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    for k in args.engines or []:
        if k not in BY_KEY:
            ap.error(f"unknown engine {k!r}; known: {', '.join(BY_KEY)}")
    if args.workloads:
        args.workloads = [("sb_" if w == "sb" else w) for w in args.workloads]
        for w in args.workloads:
            if w not in ("load_data", "scan", "update", "delete", "insert", "sb_"):
                ap.error(f"unknown workload {w!r}")
    return args, mode


def main(argv=None):
    args, mode = parse_args(argv)
    if args.report:
        bench = Bench.from_raw(args, args.report)
        out = args.out or (BUILD / "bench-out" if bench.mode == "quick" else ROOT / "docs")
        rows, charts = write_reports(bench, out / "benchmarks.md", out / "bench")
        print_summary(rows, bench.p["reps"])
        say(f"wrote {out / 'benchmarks.md'} and {len(charts)} chart(s) from {args.report}")
        return 0
    # One run at a time per checkout: a second one would stop and wipe the first one's
    # server in build/bench (ci/test runs --quick while someone may run the full mode).
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    lock = open(BENCH_DIR / "lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        print(f"ci/bench: ERROR: another ci/bench is running in this checkout "
              f"({lock.read().strip() or 'unknown'}); it owns {BENCH_DIR}", file=sys.stderr)
        return 2
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}, {' '.join(sys.argv[1:]) or 'full mode'}, started "
               f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
    lock.flush()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    bench = None
    server = None
    try:
        if not args.no_build:
            say("building ha_rust.so (ci/lib.sh build_plugin)")
            note_build()
            r = subprocess.run(["bash", "-c", '. "$0"; build_plugin', str(LIB)])
            if r.returncode != 0:
                raise HarnessError("build_plugin failed")
        else:
            note_build()
            BUILT["text"] += " (built before this run: --no-build)"
        if not (BUILD / "plugin" / "ha_rust.so").exists():
            raise HarnessError("build/plugin/ha_rust.so is missing (run without --no-build)")
        snapshot_plugin()
        if args.string_keys:
            from . import strkeys
            out = args.out or ROOT / "docs"
            md = strkeys.run(rows=args.rows or 200_000, reps=args.reps or 5,
                             timeout=args.timeout or 900, out_md=out / "benchmarks.md")
            print(md)
            say(f"wrote the string-key section of {out / 'benchmarks.md'}")
            return 0
        for tool in ("mariadb", "gnuplot") + (("sysbench",) if not args.no_sysbench else ()):
            if not shutil.which(tool):
                raise HarnessError(f"{tool} is not installed (ci/setup installs it)")
        if args.profile:
            if args.profiler == "perf" and not shutil.which("perf"):
                raise HarnessError("perf is not installed (Debian: linux-perf)")
            if args.profiler == "callgrind" and not shutil.which("valgrind"):
                raise HarnessError("valgrind is not installed")
            bench = Bench(args, mode)
            server = bench.server
            profile(args, mode)
            return 0
        bench = Bench(args, mode)
        server = bench.server
        say(f"ci/bench {mode} mode: {bench.p['rows']:,} rows, {bench.p['reps']} repetitions, "
            f"statement time limit {bench.p['timeout']} s")
        bench.run()
        out = args.out or (BUILD / "bench-out" if mode == "quick" else ROOT / "docs")
        out_md = out / "benchmarks.md"
        rows, charts = write_reports(bench, out_md, out / "bench")
        print_summary(rows, bench.p["reps"])
        bad = [f"{BY_KEY[e].label} {SHORT[w]}: " + (f.wrong[0] if f.wrong else f.failures[0]["msg"])
               for e, ws in bench.results.items() if BY_KEY[e].ours
               for w, f in ws.items() if isinstance(f, Figures)
               and (f.wrong or any(x["kind"] in ("crash", "timeout", "error") for x in f.failures))]
        for b in bad:
            say(f"problem with our engine: {b}")
        say(f"wrote {out_md}, {out / 'bench' / 'results.json'} and "
            f"{len(charts)} chart(s) in {out / 'bench'} "
            f"({(time.monotonic() - bench.started) / 60:.1f} min)")
        return 3 if bad and args.strict else 0
    except Interrupted as e:
        print(f"\nci/bench: interrupted ({e}); stopping the server", file=sys.stderr)
        return 130
    except HarnessError as e:
        print(f"ci/bench: ERROR: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            if server.child and server.child.poll() is None:
                server.child.kill()
            server.stop(patience=20)
