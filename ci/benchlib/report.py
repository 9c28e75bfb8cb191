"""Reports: ratios, results.json, the Markdown page, charts (gnuplot) and the
summary printed at the end."""
import datetime
import json
import os
import platform
import subprocess
import time
from .config import (
    BENCH_DIR, BUILD, BY_KEY, CACHE, ENGINES, PAIRS, PAIR_WORKLOADS, SB_WRITE_TESTS,
    SB_WRITE_THREADS, SERVER_OPTIONS, SHORT, WORKLOADS, sb_workload)
from .util import fmt_bytes, fmt_range, fmt_value, loadavg, note, say, sh
from .build import BUILT
from .dataset import COLUMNS, DELETE_SQL, SCAN_SQL, UPDATE_SQL
from .workloads import Figures


def ratio_of(kind, ours, peer):
    """The ratio as reported: time -> speed-up (peer/ours: 2.0 = twice as fast);
    size, memory -> ours/peer (0.7 = 30% smaller); tput -> ours/peer."""
    if kind == "time":
        return peer / ours if ours > 0 else float("inf")
    return ours / peer if peer > 0 else float("inf")


def advantage(kind, r):
    """The ratio turned so that higher is better for us (for the charts)."""
    return 1.0 / r if kind in ("size", "memory") else r


def ratio_words(kind):
    return {"time": "speed-up (peer time / our time)", "size": "our size / peer size",
            "memory": "our peak / peer peak", "tput": "our tx/s / peer tx/s"}[kind]


def first_line(path, prefix, value):
    """value(line) of the first line of the file that starts with prefix; "" if none."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return value(line)
    except OSError:
        pass
    return ""


def machine_info(bench):
    cpu = first_line("/proc/cpuinfo", "model name", lambda l: l.split(":", 1)[1].strip())
    mem = first_line("/proc/meminfo", "MemTotal",
                     lambda l: f"{int(l.split()[1]) / 1024 / 1024:.1f} GiB")
    osname = first_line("/etc/os-release", "PRETTY_NAME=",
                        lambda l: l.split("=", 1)[1].strip().strip('"'))
    fs = sh(["df", "-T", str(BUILD)]).splitlines()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": osname,
        "kernel": platform.release(),
        "filesystem": fs[-1].split()[1] if len(fs) > 1 else "",
        "mariadbd": sh(["/usr/sbin/mariadbd", "--version"]),
        "rustc": sh(["rustc", "--version"]),
        "sysbench": sh(["sysbench", "--version"]),
        "ha_rust (as built)": BUILT["text"],
        "load average (1, 5, 15 min)": f"{bench.load_at_start} at the start, {loadavg()} at the end"
                                        " (other work on the machine shows here)",
    }


def summarize(bench):
    """Per pair and workload: our figure, the peer's, the ratio and its range."""
    rows = []
    for pair in PAIRS:
        if pair.ours not in bench.available or pair.peer not in bench.available:
            continue                        # not asked for (--engines)
        ours_ok = bench.available[pair.ours]
        peer_ok = bench.available[pair.peer]
        for w in PAIR_WORKLOADS:
            kind = WORKLOADS[w][1]
            fo = bench.results.get(pair.ours, {}).get(w)
            fp = bench.results.get(pair.peer, {}).get(w)
            target = pair.targets.get(w)
            if not ours_ok[0] or not peer_ok[0]:
                if target is None:
                    continue
            elif not (fo and (fo.samples or fo.failures)) and not (fp and (fp.samples or fp.failures)):
                continue
            so = fo.summary() if fo else None
            sp = fp.summary() if fp else None
            r = dict(pair=f"{pair.ours}-vs-{pair.peer}", ours=pair.ours, peer=pair.peer,
                     workload=w, kind=kind, ours_summary=so, peer_summary=sp,
                     target=list(target) if target else None,
                     ours_failures=fo.failures if fo else [],
                     peer_failures=fp.failures if fp else [],
                     ours_wrong=fo.wrong if fo else [], peer_wrong=fp.wrong if fp else [],
                     available=ours_ok[0], unavailable_reason=ours_ok[1] if not ours_ok[0] else
                     (peer_ok[1] if not peer_ok[0] else ""))
            if kind == "tput":      # sysbench: lock errors per run
                r["ours_errors"] = error_totals(fo.errors if fo else [])
                r["peer_errors"] = error_totals(fp.errors if fp else [])
                r["errors_only_ours"] = errors_only_ours(r["ours_errors"], r["peer_errors"])
            if so and sp and min(so["min"], sp["min"]) > 0:
                r["ratio"] = ratio_of(kind, so["median"], sp["median"])
                if kind == "time":
                    r["ratio_range"] = [sp["min"] / so["max"], sp["max"] / so["min"]]
                else:
                    r["ratio_range"] = [so["min"] / sp["max"], so["max"] / sp["min"]]
                if target:
                    op, v = target
                    r["met"] = r["ratio"] >= v if op == ">=" else r["ratio"] <= v
            rows.append(r)
    return rows


ERROR_KINDS = ("deadlocks", "lock_wait_timeouts", "other")


def error_totals(errors):
    """sysbench's lock errors of a workload's runs (Figures.errors): the number of runs,
    and each kind's total over the runs that counted it (None: no run did)."""
    out = dict(runs=len(errors))
    for k in ERROR_KINDS:
        vals = [x[k] for x in errors if x.get(k) is not None]
        out[k] = sum(vals) if vals else None
    return out


def errors_only_ours(ours, peer):
    """The kinds of error our engine gave on a workload and the peer did not (the
    issue's target: none), when both ran it; a kind the peer does not count is
    named with "?"."""
    if not ours or not peer or not ours["runs"] or not peer["runs"]:
        return []
    out = []
    for k in ERROR_KINDS:
        if (ours[k] or 0) > 0:
            if peer[k] is None:
                out.append(k + "?")
            elif peer[k] == 0:
                out.append(k)
    return out


def per_run(total, runs):
    if total is None:
        return "n/c"
    x = total / runs
    return f"{x:.0f}" if x >= 10 or x == int(x) else f"{x:.1f}"


def errors_cell(t):
    """deadlocks / lock wait timeouts / other, per run (n/c: not counted)."""
    if not t or not t["runs"]:
        return "—"
    return " / ".join(per_run(t[k], t["runs"]) for k in ERROR_KINDS)


def describe_failures(fails, reps, wrong=()):
    kinds = {"wrong": list(wrong)} if wrong else {}
    for f in fails:
        kinds.setdefault(f["kind"], []).append(f)
    parts = []
    for k, fs in kinds.items():
        word = {"crash": "server crashed", "timeout": "timed out", "refused": "refused by the engine",
                "error": "failed", "wrong": "wrong result",
                "partial": "restarted server", "no_tx": "no transactions"}[k]
        parts.append(f"{word}" + (f" ({len(fs)}/{reps})" if k not in ("refused", "partial") else ""))
    return ", ".join(parts)


def cell(kind, s, fails, reps, wrong=(), base=None):
    if not s:
        return describe_failures(fails, reps, wrong) or "—"
    txt = fmt_value(kind, s["median"])
    rng = fmt_range(kind, s["min"], s["max"]) if s["n"] > 1 else ""
    if rng:
        txt += f" ({rng})"
    if kind == "memory" and base:
        txt += f", +{(s['median'] - base) / 1024:.1f} MB over a fresh server"
    f = describe_failures(fails, reps, wrong)
    return txt + (f"; {f}" if f else "")


def ratio_text(kind, r, rr=None):
    unit = {"time": "× faster", "size": "× the size", "memory": "× the memory",
            "tput": "× the tx/s"}[kind]
    txt = f"{r:.2f}{unit}"
    if rr and abs(rr[1] - rr[0]) > 0.005:
        txt += f" ({rr[0]:.2f}–{rr[1]:.2f})"
    return txt


def label_y(top, tgt):
    """Where a bar's label goes: above the bar (or the 1× line), clear of the target."""
    y = max(top, 1.0) * 1.12
    if tgt != "NaN" and abs(y / float(tgt) - 1) < 0.12:
        y = max(y, float(tgt)) * 1.14
    return y


def write_chart(bench, pair_rows, pair, out_png, workdir):
    pts = [r for r in pair_rows if r.get("ratio") is not None or r["ours_failures"]
           or r["peer_failures"] or r["ours_wrong"] or r["peer_wrong"]]
    if not any(r.get("ratio") is not None for r in pts):
        return False
    dat = workdir / (out_png.stem + ".dat")
    lines = []
    ymin, ymax = 1.0, 1.0
    for i, r in enumerate(pts):
        kind = r["kind"]
        if r.get("ratio") is None:      # no figure: say why, where the bar would be
            side = "ours" if not r["ours_summary"] else "peer"
            fails = r[f"{side}_failures"] + [dict(kind="wrong")] * len(r[f"{side}_wrong"])
            words = {"crash": "crashed", "timeout": "timed out", "refused": "refused",
                     "error": "failed", "wrong": "wrong result", "partial": "partial",
                     "no_tx": "no tx"}
            kinds = sorted({words[f["kind"]] for f in fails})
            who = BY_KEY[r[side]].label if side == "peer" else "ours"
            tgt = f"{advantage(kind, r['target'][1]):.6g}" if r["target"] else "NaN"
            lines.append(f'{i} "{SHORT[r["workload"]]}" 1 1 1 {tgt} {0x9e9e9e} '
                         f'"{who}: {", ".join(kinds)}" {label_y(1, tgt):.6g}')
            continue
        adv = advantage(kind, r["ratio"])
        lo, hi = sorted(advantage(kind, x) for x in r["ratio_range"])
        tgt = "NaN"
        if r["target"]:
            tgt = f"{advantage(kind, r['target'][1]):.6g}"
            ymin, ymax = min(ymin, float(tgt)), max(ymax, float(tgt))
        color = 0x9e9e9e if r.get("met") is None else (0x2e7d32 if r["met"] else 0xd84315)
        label = SHORT[r["workload"]]
        lines.append(f'{i} "{label}" {adv:.6g} {lo:.6g} {hi:.6g} {tgt} {color} '
                     f'"{r["ratio"]:.2f}×" {label_y(hi, tgt):.6g}')
        ymin, ymax = min(ymin, lo), max(ymax, hi)
    dat.write_text("\n".join(lines) + "\n")
    ours, peer = BY_KEY[pair.ours].label, BY_KEY[pair.peer].label
    title = (f"{ours} vs {peer}: {bench.meta['rows']:,} rows, median of {bench.p['reps']}")
    script = f"""
set terminal pngcairo size {max(960, 110 * len(pts))},520 font 'sans,10'
set output '{out_png}'
set title "{title}\\n(bar: advantage of {ours}, higher is better; label: ratio as in the table; whiskers: min–max; red dash: target)"
set style fill solid 0.85 border -1
set logscale y 2
set yrange [{ymin / 1.6:.4g}:{ymax * 1.8:.4g}]
set ytics ({", ".join(f'"{t:g}×" {t:g}' for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20, 50, 100) if ymin / 1.6 <= t <= ymax * 1.8)})
set xrange [-0.7:{len(pts) - 0.3}]
set ylabel 'advantage (×, log scale; 1 = equal)'
set grid ytics
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc 'black'
plot '{dat}' using 1:3:($1-0.3):($1+0.3):(1):3:7:xtic(2) with boxxyerror lc rgb variable notitle, \\
     '' using 1:3:4:5 with yerrorbars lc 'black' pt 7 ps 0.4 notitle, \\
     '' using 1:6:(0.34) with xerrorbars lc 'red' lw 3 pt 0 title 'target', \\
     '' using 1:9:8 with labels notitle
"""
    gp = workdir / (out_png.stem + ".gp")
    gp.write_text(script)
    r = subprocess.run(["gnuplot", str(gp)], capture_output=True, text=True)
    if r.returncode != 0:
        note(f"gnuplot failed for {out_png.name}: {r.stderr.strip()[:500]}")
        return False
    return True


SB_WRITE_WORKLOADS = {sb_workload(t, n) for t in SB_WRITE_TESTS for n in SB_WRITE_THREADS}


def errors_section(bench, rows):
    """The sysbench workloads' lock errors per run beside their throughput, and the
    errors our engine gives that the peer does not (the target: none)."""
    md = []
    for pair in PAIRS:
        pr = [r for r in rows if r["ours"] == pair.ours and "ours_errors" in r
              and (r["ours_errors"]["runs"] or r["peer_errors"]["runs"])]
        if not pr:
            continue
        ours, peer = BY_KEY[pair.ours].label, BY_KEY[pair.peer].label
        md.append(f"## sysbench: lock errors per run, {ours} vs {peer}\n")
        md.append("Errors per run (the mean over the runs that gave a figure or an error): "
                  "**deadlocks / lock wait timeouts / other**. sysbench ignores and retries "
                  "errors 1213 (deadlock), 1205 (lock wait timeout) and 1020 (record "
                  "changed), counted in its `ignored errors`; deadlocks and lock wait timeouts "
                  "are the engine's own counters read before and after each run "
                  f"({ours}: `Rust_lock_deadlocks`, `Rust_lock_wait_timeouts`; {peer}: "
                  "`Innodb_deadlocks` and `information_schema.INNODB_METRICS` "
                  "`lock_timeouts`, enabled by default); other: the ignored errors those two "
                  "do not explain, plus 1 for a run that sysbench ended on an error it does "
                  "not ignore. n/c: not counted. The target: no error that "
                  f"{ours} gives and {peer} does not also give on the same workload.\n")
        md.append(f"| workload | {ours} | {peer} | {ours} errors per run | "
                  f"{peer} errors per run | errors only {ours} gives |")
        md.append("|---|---|---|---|---|---|")
        reps = bench.p["reps"]
        for r in pr:
            only = r["errors_only_ours"]
            md.append(f"| {WORKLOADS[r['workload']][0]} | "
                      f"{cell('tput', r['ours_summary'], r['ours_failures'], reps, r['ours_wrong'])} | "
                      f"{cell('tput', r['peer_summary'], r['peer_failures'], reps, r['peer_wrong'])} | "
                      f"{errors_cell(r['ours_errors'])} | {errors_cell(r['peer_errors'])} | "
                      + (("**" + ", ".join(k.replace("_", " ") for k in only) + "**")
                         if only else "none") + " |")
        md.append("")
    return md


PROFILE_DOC = """\
## Profiling one workload

`ci/bench --profile WORKLOAD [--engine ENGINE] [--profiler perf|callgrind] [--quick]`
builds the plugin, starts the scratch server, loads the table (untimed) and records
only the chosen statement. For `update` under perf the server is restarted and the
table read once first, as the benchmark's UPDATE runs (under callgrind it is not: the
server runs under valgrind from the start). WORKLOAD is one of `load_data`, `insert`, `scan`, `update`,
`delete`; ENGINE is one of {engines} (default `rust_csv`).

- `--profiler perf` (default): `perf record --call-graph dwarf -F 999 -p <mariadbd pid>`
  for the statement's duration (DWARF call graphs: the Rust code has no frame
  pointers); writes `build/bench/profile/<engine>-<workload>.perf.data` and a
  `perf report --stdio` summary beside it. Explore it with
  `perf report -i build/bench/profile/rust_csv-scan.perf.data`.
- `--profiler callgrind`: the server itself runs under
  `valgrind --tool=callgrind --instr-atstart=no` (slow: expect the statement to take
  about 50× longer; use `--quick`); instrumentation is switched on with
  `callgrind_control -i on` for the statement only. Writes
  `build/bench/profile/<engine>-<workload>.callgrind.out` and a `callgrind_annotate`
  summary; `kcachegrind` reads the file too.

The release profile keeps line tables (`debug = 1` in Cargo.toml), so Rust frames are
named in both; for names inside `mariadbd` itself install Debian's
`mariadb-server-core-dbgsym` (from the `debian-debug` archive). The same by hand, against any running scratch server:

```sh
ci/demo --keep                                  # or a server of your own
perf record -g -p "$(cat build/demo/pid)" -o /tmp/perf.data -- sleep 30 &
mariadb -S build/demo/sock -uroot -e 'SELECT ... FROM db.t WHERE ...'
wait; perf report -i /tmp/perf.data
```
"""


def write_reports(bench, out_md, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = summarize(bench)
    reps = bench.p["reps"]
    info = machine_info(bench)
    duration = time.monotonic() - bench.started
    # JSON: everything, raw samples included
    data = dict(
        generated=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        mode=bench.mode, rows=bench.meta["rows"], repetitions=reps, seed=bench.args.seed,
        statement_time_limit_s=bench.p["timeout"], duration_s=round(duration, 1),
        schedule=bench.schedule,
        dataset=bench.meta, machine=info, built_from=BUILT, server_options=SERVER_OPTIONS,
        settings=bench.settings,
        available={k: dict(available=v[0], reason=v[1]) for k, v in bench.available.items()},
        server_restarts=bench.server.events,
        raw=bench.raw(),
        comparisons=rows,
        units=dict(time="s", size="bytes", memory="KiB (VmHWM)", tput="transactions/s"))
    (out_dir / "results.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")

    # charts
    charts = {}
    for pair in PAIRS:
        pr = [r for r in rows if r["ours"] == pair.ours]
        png = out_dir / f"{pair.ours}-vs-{pair.peer}.png"
        if write_chart(bench, pr, pair, png, BENCH_DIR):
            charts[pair.ours] = png
        else:
            png.unlink(missing_ok=True)

    # Markdown
    rel = os.path.relpath(out_dir, out_md.parent)
    md = []
    md.append("# Benchmarks\n")
    md.append(f"Generated by `ci/bench{' --quick' if bench.mode == 'quick' else ''}` on "
              f"{data['generated']} in {duration / 60:.1f} minutes; do not edit by hand, "
              "re-run it. Raw samples: "
              f"[{rel}/results.json]({rel}/results.json).\n")
    md.append(f"Data: **{bench.meta['rows']:,} rows** of mixed columns (see *Method*); every "
              f"figure is the **median of {reps} repetitions**, with the spread (min–max) in "
              "brackets. Ratios compare medians: for times it is the speed-up "
              "(peer time / our time, 2.00× = twice as fast); for size and memory it is "
              "our figure / the peer's (0.70× = 30% smaller); for sysbench it is our "
              "transactions per second / the peer's.\n")
    md.append("## RUST layouts against MariaDB's engines\n")
    md.append("| workload | pair | ours | peer | ratio | target | |")
    md.append("|---|---|---|---|---|---|---|")
    for pair in PAIRS:
        pr = [r for r in rows if r["ours"] == pair.ours]
        name = f"{BY_KEY[pair.ours].label} vs {BY_KEY[pair.peer].label}"
        if pr and not pr[0]["available"]:
            why = pr[0]["unavailable_reason"]
            md.append(f"| all | {name} | not available in this build | | | | {why} |")
            continue
        for r in pr:
            kind = r["kind"]
            t = r["target"]
            tt = f"{t[0].replace('>=', '≥').replace('<=', '≤')} {t[1]:.2f}×" if t else "—"
            met = "" if "met" not in r else ("**met**" if r["met"] else "**not met**")
            if r["ours_wrong"]:
                met += " (but wrong results: see below)"
            if r.get("errors_only_ours"):
                met += " (but errors InnoDB does not give: see below)".replace(
                    "InnoDB", BY_KEY[pair.peer].label)
            ratio = ratio_text(kind, r["ratio"], r.get("ratio_range")) if "ratio" in r else "—"
            md.append(f"| {WORKLOADS[r['workload']][0]} | {name} | "
                      f"{cell(kind, r['ours_summary'], r['ours_failures'], reps, r['ours_wrong'], bench.results.get(r['ours'], {}).get('memory_baseline'))} | "
                      f"{cell(kind, r['peer_summary'], r['peer_failures'], reps, r['peer_wrong'], bench.results.get(r['peer'], {}).get('memory_baseline'))} | "
                      f"{ratio} | {tt} | {met} |")
    md.append("")
    for pair in PAIRS:
        if pair.ours in charts:
            md.append(f"![{BY_KEY[pair.ours].label} vs {BY_KEY[pair.peer].label}]"
                      f"({rel}/{charts[pair.ours].name})\n")

    md += errors_section(bench, rows)

    md.append("## Every engine\n")
    md.append("sysbench's writing tests are in the tables above only.\n")
    engines = [e for e in ENGINES if e.key in bench.results]
    ws = [w for w in PAIR_WORKLOADS if any(w in bench.results[e.key] for e in engines)
          and w not in SB_WRITE_WORKLOADS]     # those: the pair table and the next section
    md.append("| engine | " + " | ".join(SHORT[w] for w in ws) + " |")
    md.append("|---" * (len(ws) + 1) + "|")
    for e in engines:
        cells = []
        for w in ws:
            f = bench.results[e.key].get(w)
            cells.append(cell(WORKLOADS[w][1], f.summary(), f.failures, reps, f.wrong,
                              bench.results[e.key].get("memory_baseline")) if f else "—")
        md.append(f"| {e.label} | " + " | ".join(cells) + " |")
    for e in ENGINES:
        ok, why = bench.available.get(e.key, (True, ""))
        if not ok:
            md.append(f"| {e.label} | not available in this build: {why} |" + " |" * (len(ws) - 1))
    md.append("")

    problems = []
    for e in engines:
        for w, f in bench.results[e.key].items():
            if not isinstance(f, Figures):
                continue
            for x in f.failures:
                at = f", rep {x['rep']}" if x["rep"] else ""
                problems.append(f"- {e.label}, {SHORT[w]}{at}: {x['kind']}: {x['msg']}")
            for x in f.wrong:
                problems.append(f"- {e.label}, {SHORT[w]}: WRONG RESULT: {x}")
    md.append("## Failures, crashes and wrong results\n")
    if problems:
        md.append("A crash or a time-out of one statement costs that sample only: the harness "
                  "restarts the server and carries on.\n")
        md += problems
        if bench.server.events:
            md.append(f"\nServer restarts: {len(bench.server.events)}.")
    else:
        md.append("None: every statement finished in time, and every result and row count "
                  "agreed with the data set.")
    md.append("")

    md.append("## Method\n")
    cols = ", ".join(f"`{n} {t}`" for n, t in COLUMNS)
    md.append(f"- One table `t` per engine ({cols}); `PRIMARY KEY (id)` only for the "
              "clustered engines (InnoDB, RUST BTREE), no index elsewhere (CSV and "
              "ARCHIVE take none). All columns are NOT NULL because MariaDB's CSV engine "
              "requires it.")
    md.append(f"- The data set is generated once from seed {bench.args.seed} "
              f"({fmt_bytes(bench.meta['tsv_bytes'])} as a LOAD DATA file, "
              f"{fmt_bytes(bench.meta['sql_bytes'])} as {bench.meta['batch']}-row INSERTs): "
              "ids 1..N in order, random integers, decimals, dates and datetimes, 8 short "
              "tags, names (some non-ASCII), and a note of 8–60 words (some commas and "
              "double quotes).")
    steps = ("CREATE TABLE and the **multi-row INSERT** "
             "batches (timed, sent by the `mariadb` client's `source`); DROP, CREATE again "
             "and **LOAD DATA INFILE** (timed); FLUSH TABLES, then the table's files in "
             "the datadir are summed (**size**, `.frm` included); the **scan** `"
             + SCAN_SQL + "` (timed, warm cache); the **DELETE** `" + DELETE_SQL + "`.")
    if bench.schedule == "interleaved":
        md.append("- The engines take turns: repetition 1 of every engine, then repetition 2 "
                  "of every engine in the opposite order, and so on (A, B, C, then C, B, A), "
                  "so that the machine's drift over minutes (±30% on a shared VM) falls on "
                  "every engine alike and no engine always goes first. Each engine's "
                  "repetition runs on its own freshly started server (same data folder, same "
                  "settings): " + steps)
        md.append("- After every engine's repetitions, the **UPDATE** `" + UPDATE_SQL + "`, "
                  "taking turns the same way, repeated on one table per engine loaded "
                  "(untimed) in its first round and loaded again only after a failure; each "
                  "repetition on a freshly started server, after reading the table once "
                  "(`SELECT COUNT(*), SUM(k)`, untimed: it checks that the table came through "
                  "the restart and warms the caches). Last, because MariaDB's CSV engine "
                  "corrupts its memory there and takes the next statements down with it; "
                  "nothing else runs on a server after an UPDATE.")
    else:
        md.append("- Each repetition, per engine (each engine ran to completion in turn): "
                  + steps + " After all repetitions, the **UPDATE** `" + UPDATE_SQL + "`, "
                  "repeated on one freshly loaded table (loaded again only after a failure); "
                  "last, because MariaDB's CSV engine corrupts its memory there and takes the "
                  "next statements down with it.")
    md.append("- Times are taken by the server's clock (`SYSDATE(6)` before and after, in the "
              "same session), so starting the client is not counted. Every result is checked "
              "against the data set (the generator computes the scan's answer, and the row "
              "count and a column sum expected after each statement); a wrong one is "
              "reported and its time discarded.")
    if bench.schedule == "interleaved":
        md.append("- **Memory**: the highest VmHWM (peak RSS, `/proc/<pid>/status`) of the "
                  "servers an engine ran on, one per repetition and per UPDATE repetition "
                  "(sysbench excluded): the peak of a server that ran one repetition of the "
                  "workloads (or loaded the table and ran one UPDATE). \"over a fresh "
                  "server\" subtracts the lowest RSS of those servers right after start-up "
                  "with the plugins installed.")
    else:
        md.append("- **Memory**: each engine runs on a freshly started server (same data "
                  "folder, same settings) and its figure is the server's VmHWM (peak RSS, "
                  "`/proc/<pid>/status`) at the end of that engine's workloads (sysbench "
                  "excluded).")
    wt = bench.p.get("sb_write_threads", [])
    md.append(f"- **sysbench** `oltp_point_select` and `oltp_read_only` at 1 and 2 threads"
              + (f", then the writing tests `oltp_read_write`, `oltp_write_only` and "
                 f"`oltp_update_index` at {', '.join(map(str, wt))} threads"
                 + (" (quick mode; the full mode runs 1, 4, 16 and 64)"
                    if bench.mode == "quick" else "") if wt else "")
              + f"; {bench.p['sb_rows']:,} rows in one table (`--auto_inc=off`, uniform), "
              f"{bench.p['sb_time']} s per run, after one {bench.p['sb_warmup']} s warm-up run; "
              "only for RUST BTREE and InnoDB (the tests need a primary key), and only when "
              "RUST BTREE exists (`--sysbench` runs InnoDB's side anyway). Both tables live "
              "on one fresh server after the other workloads and their runs alternate "
              "(" + ("ours, InnoDB, then InnoDB, ours at the next repetition, ..."
                     if bench.schedule == "interleaved" else "ours, InnoDB, ours, ...")
              + "), so that other load on the machine falls on both "
              "alike; single-thread figures on a 2-core VM are sensitive to it. Each "
              "repetition runs the read-only tests first, then the writing ones.")
    if wt:
        md.append("- The writing tests change the one prepared table, which serves every "
                  "test and repetition: `oltp_read_write` and `oltp_write_only` delete a row "
                  "and insert it again with the same id, `oltp_update_index` changes the "
                  "indexed `k`; the row count stays, and is checked after every writing "
                  "run (a different count is a wrong result). So the read-only tests of "
                  "repetition 2 read a table the writing tests of repetition 1 changed. "
                  "Targets: ≥ 0.80× InnoDB's tx/s at 4 threads and above as the first "
                  "step (the goal is 1.0×), none at 1 thread (a latency figure, on a "
                  "2-core VM); the read-only and point-select ratios no worse than before "
                  "the writing tests came; and no lock error that InnoDB does not also give "
                  "on the same workload (the section *sysbench: lock errors per run*). "
                  "sysbench retries the errors it ignores, so a run with no transaction at "
                  "all is reported as such, without a figure, but is not a failure for "
                  "`--strict`; an error sysbench does not ignore is. The server's "
                  "`max_connections` (151) covers 64 threads.")
    md.append(f"- Every statement has a client-side time limit of {bench.p['timeout']} s; a "
              "server that dies or reports a crash is restarted and the run goes on.")
    md.append("- Engines whose layout this build refuses at CREATE TABLE are reported as not "
              "available and skipped.\n")

    md.append("## Settings and machine\n")
    md.append("The server is Debian's stock `mariadbd`, started by `ci/lib.sh`'s `start_server` "
              "with these options; the corresponding memory settings get one value "
              f"({CACHE}), durability is each engine's default (InnoDB commits are durable: "
              "`innodb_flush_log_at_trx_commit=1`; no binary log):\n")
    md.append("```\n" + " \\\n".join(SERVER_OPTIONS) + "\n```\n")
    md.append("| variable | value |\n|---|---|")
    for k, v in bench.settings.items():
        md.append(f"| `{k}` | `{v}` |")
    md.append("")
    md.append("| machine | |\n|---|---|")
    for k, v in info.items():
        md.append(f"| {k} | {v} |")
    md.append("")

    md.append("## Running it\n")
    md.append("```sh\nci/bench --quick        # 20k rows, 3 repetitions; writes build/bench-out/\n"
              "ci/bench                # 1,000,000 rows, 5 repetitions; writes docs/benchmarks.md,\n"
              "                        # docs/bench/*.png and docs/bench/results.json\n"
              "ci/bench --engines rust_csv,csv --workloads scan,load_data   # a subset\n"
              "ci/bench --quick --no-build --strict   # CI smoke test (see below)\n"
              "ci/bench --help\n```\n")
    md.append("It exits 0 whenever it ran, whatever the figures (a missed target is not a "
              "failure); 2 when the harness itself broke (build, server start, plugin "
              "install); 130 when interrupted (Ctrl-C or SIGTERM stop it and its server). "
              "With `--strict` it exits 3 when a RUST layout returned a wrong result or "
              "crashed or hung the server. One run at a time: it owns `build/bench` (its "
              "server, data set, and a private copy of `ha_rust.so`, so that a rebuild by "
              "`ci/test` meanwhile does not change what is measured).\n")
    md.append(PROFILE_DOC.format(engines=", ".join(f"`{e.key}`" for e in ENGINES)))
    # the string-key section (ci/bench --string-keys, strkeys.py) is kept
    from .strkeys import keep_section
    old = out_md.read_text() if out_md.exists() else ""
    out_md.write_text(keep_section(old, "\n".join(md) + "\n"))
    return rows, charts


def print_summary(rows, reps):
    say("summary (ours vs peer, median ratio)")
    for r in rows:
        if not r["available"]:
            continue
        if "ratio" not in r:
            f = (describe_failures(r["ours_failures"], reps, r["ours_wrong"]) or
                 describe_failures(r["peer_failures"], reps, r["peer_wrong"]))
            print(f"  {r['ours']:>13} vs {r['peer']:<8} {SHORT[r['workload']]:<14} — {f}")
            continue
        met = "" if "met" not in r else ("  target met" if r["met"] else "  target NOT met")
        t = r["target"]
        tt = f" (target {t[0]} {t[1]})" if t else ""
        only = r.get("errors_only_ours")
        errs = ""
        if "ours_errors" in r and (r["ours_errors"]["runs"] or r["peer_errors"]["runs"]):
            errs = (f"  errors/run {errors_cell(r['ours_errors'])} vs "
                    f"{errors_cell(r['peer_errors'])}"
                    + (f" (only ours: {', '.join(only)})" if only else ""))
        print(f"  {r['ours']:>13} vs {r['peer']:<8} {SHORT[r['workload']]:<14} "
              f"{ratio_text(r['kind'], r['ratio'])}{tt}{met}{errs}")
    seen = set()
    for r in rows:
        if not r["available"] and r["ours"] not in seen:
            seen.add(r["ours"])
            print(f"  {r['ours']:>13}: not available in this build ({r['unavailable_reason']})")
