"""sysbench's output, the lock error counts, and their place in the report."""
import unittest
from types import SimpleNamespace

from .config import LOCK_COUNTERS, PAIRS, SHORT, WORKLOADS, sb_workload, sysbench_runs
from .report import errors_cell, errors_only_ours, errors_section, error_totals, summarize
from .workloads import Figures, lock_counter_sql, lock_errors, parse_counters, parse_sysbench

OUTPUT = """\
SQL statistics:
    queries performed:
        read:                            44240
        write:                           3208
        other:                           3962
        total:                           51410
    transactions:                        802    (266.29 per sec.)
    queries:                             51410  (17069.50 per sec.)
    ignored errors:                      2358   (782.92 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          3.0106s
    total number of events:              802
"""


class ParseTest(unittest.TestCase):
    def test_run_output(self):
        self.assertEqual(parse_sysbench(OUTPUT),
                         dict(transactions=802, tps=266.29, ignored=2358))

    def test_zero_transactions_and_missing_lines(self):
        out = OUTPUT.replace("802    (266.29", "0    (0.00").replace("2358   (782", "0   (0")
        self.assertEqual(parse_sysbench(out), dict(transactions=0, tps=0.0, ignored=0))
        self.assertEqual(parse_sysbench("FATAL: mysql_drv_query() returned error 1030"),
                         dict(transactions=None, tps=None, ignored=None))

    def test_counters(self):
        spec = LOCK_COUNTERS["innodb"]
        sql = lock_counter_sql(spec)
        self.assertIn("'INNODB_DEADLOCKS'", sql)
        self.assertIn("'lock_timeouts'", sql)
        out = "status\tINNODB_DEADLOCKS\t7\nmetric\tlock_timeouts\t2\n"
        self.assertEqual(parse_counters(out, spec), (7, 2))
        # a metric that is not enabled reads NULL: not counted
        out = "status\tINNODB_DEADLOCKS\t7\nmetric\tlock_timeouts\tNULL\n"
        self.assertEqual(parse_counters(out, spec), (7, None))
        out = "status\tRUST_LOCK_DEADLOCKS\t3\nstatus\tRUST_LOCK_WAIT_TIMEOUTS\t0\n"
        self.assertEqual(parse_counters(out, LOCK_COUNTERS["rust_btree"]), (3, 0))

    def test_lock_errors(self):
        e = lock_errors(1, 12, (5, 1), (15, 2))
        self.assertEqual(e, dict(rep=1, ignored=12, deadlocks=10, lock_wait_timeouts=1,
                                 other=1))
        # counters that went back (a restarted server) or were not read: not counted
        e = lock_errors(2, 4, (5, 1), (0, 0))
        self.assertEqual((e["deadlocks"], e["lock_wait_timeouts"], e["other"]), (None, None, 4))
        e = lock_errors(2, None, None, (1, 1))
        self.assertEqual((e["deadlocks"], e["other"]), (None, None))
        # sysbench stopped on an error it does not ignore: one more "other"
        e = lock_errors(3, None, (0, 0), (0, 0), fatal=True)
        self.assertEqual((e["deadlocks"], e["lock_wait_timeouts"], e["other"]), (0, 0, 1))
        # the counters never make "other" negative
        self.assertEqual(lock_errors(1, 0, (0, 0), (3, 0))["other"], 0)


class ConfigTest(unittest.TestCase):
    def test_writing_workloads(self):
        for t in ("read_write", "write_only", "update_index"):
            for n in (1, 4, 16, 64):
                w = f"sb_{t}_{n}"
                self.assertEqual(WORKLOADS[w][1], "tput")
                self.assertIn(w, SHORT)
                self.assertEqual(PAIRS[2].targets.get(w), None if n == 1 else (">=", 0.8))
        self.assertEqual(sb_workload("oltp_update_index", 16), "sb_update_index_16")

    def test_read_only_first(self):
        runs = sysbench_runs([1, 4])
        self.assertEqual(runs[:4], [("oltp_point_select", 1), ("oltp_point_select", 2),
                                    ("oltp_read_only", 1), ("oltp_read_only", 2)])
        self.assertEqual(len(runs), 4 + 3 * 2)
        self.assertEqual(sysbench_runs([]), runs[:4])


def errs(rep, d, t, o):
    return dict(rep=rep, ignored=d + t + o, deadlocks=d, lock_wait_timeouts=t, other=o)


class ReportTest(unittest.TestCase):
    def test_totals_and_only_ours(self):
        ours = error_totals([errs(1, 10, 0, 1), errs(2, 20, 1, 0)])
        self.assertEqual(ours, dict(runs=2, deadlocks=30, lock_wait_timeouts=1, other=1))
        peer = error_totals([errs(1, 2, 0, 0), errs(2, 0, 0, 0)])
        self.assertEqual(errors_only_ours(ours, peer), ["lock_wait_timeouts", "other"])
        self.assertEqual(errors_cell(ours), "15 / 0.5 / 0.5")
        self.assertEqual(errors_cell(error_totals([])), "—")
        # a kind the peer does not count
        peer = error_totals([dict(rep=1, ignored=0, deadlocks=0, lock_wait_timeouts=None,
                                  other=0)])
        self.assertEqual(errors_cell(peer), "0 / n/c / 0")
        self.assertEqual(errors_only_ours(ours, peer),
                         ["deadlocks", "lock_wait_timeouts?", "other"])
        # the peer did not run it: nothing to compare
        self.assertEqual(errors_only_ours(ours, error_totals([])), [])

    def bench(self):
        w = "sb_read_write_4"
        results = {
            "rust_btree": {w: Figures([200.0, 260.0, 250.0],
                                      errors=[errs(r, 100, 2, 0) for r in (1, 2, 3)]),
                           "sb_read_only_1": Figures([900.0], errors=[errs(1, 0, 0, 0)])},
            "innodb": {w: Figures([300.0, 310.0, 320.0],
                                  errors=[errs(r, 5, 0, 0) for r in (1, 2, 3)]),
                       "sb_read_only_1": Figures([1000.0], errors=[errs(1, 0, 0, 0)])}}
        return SimpleNamespace(results=results, available={k: (True, "") for k in results},
                               p=dict(reps=3))

    def test_summary_rows(self):
        rows = {r["workload"]: r for r in summarize(self.bench())}
        r = rows["sb_read_write_4"]
        self.assertAlmostEqual(r["ratio"], 250.0 / 310.0)
        self.assertEqual(r["target"], [">=", 0.8])
        self.assertTrue(r["met"])
        self.assertEqual(r["ours_errors"], dict(runs=3, deadlocks=300, lock_wait_timeouts=6,
                                                other=0))
        self.assertEqual(r["errors_only_ours"], ["lock_wait_timeouts"])
        self.assertEqual(rows["sb_read_only_1"]["errors_only_ours"], [])
        self.assertNotIn("ours_errors", summarize(SimpleNamespace(
            results={"rust_csv": {"scan": Figures([1.0])}, "csv": {"scan": Figures([2.0])}},
            available={"rust_csv": (True, ""), "csv": (True, "")}))[0])

    def test_errors_section(self):
        b = self.bench()
        md = "\n".join(errors_section(b, summarize(b)))
        self.assertIn("## sysbench: lock errors per run, RUST LAYOUT=BTREE vs InnoDB", md)
        self.assertIn("| sysbench oltp_read_write, 4 threads | 250 tx/s (200–260) | "
                      "310 tx/s (300–320) | 100 / 2 / 0 | 5 / 0 / 0 | "
                      "**lock wait timeouts** |", md)
        self.assertIn("| sysbench oltp_read_only, 1 thread | 900 tx/s | 1000 tx/s | "
                      "0 / 0 / 0 | 0 / 0 / 0 | none |", md)
        self.assertEqual(errors_section(b, []), [])

    def test_no_transactions_is_named(self):
        from .report import describe_failures
        self.assertEqual(describe_failures([dict(rep=1, kind="no_tx", msg="")], 3),
                         "no transactions (1/3)")


class RawTest(unittest.TestCase):
    """raw.json keeps the error counts (format 3) and older files still read."""

    def raw(self, fmt, figure):
        return dict(format=fmt, schedule="interleaved", mode="quick", p=dict(reps=3),
                    seed=1, meta=dict(rows=10), settings={}, built={"text": "x"},
                    available={"innodb": [True, ""]}, events=[], load_at_start="0",
                    duration=1.0, raw={"innodb": {"sb_read_only_1": figure}})

    def read(self, d):
        import json
        import tempfile
        from pathlib import Path
        from .cli import parse_args
        from .workloads import Bench
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "raw.json"
            f.write_text(json.dumps(d))
            args, _ = parse_args(["--report", str(f)])
            return Bench.from_raw(args, f)

    def test_format_2_and_3(self):
        b = self.read(self.raw(2, dict(samples=[1.0], failures=[], wrong=[])))
        self.assertEqual(b.results["innodb"]["sb_read_only_1"].errors, [])
        self.assertIsNone(b.sb_seconds)
        d = self.raw(3, dict(samples=[1.0], failures=[], wrong=[], errors=[errs(1, 1, 0, 0)]))
        d["sysbench_s"] = 12.5
        b = self.read(d)
        self.assertEqual(b.results["innodb"]["sb_read_only_1"].errors, [errs(1, 1, 0, 0)])
        self.assertEqual(b.sb_seconds, 12.5)
        self.assertIn("errors", b.raw()["innodb"]["sb_read_only_1"])


if __name__ == "__main__":
    unittest.main()
