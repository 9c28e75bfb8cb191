"""Ratios, targets and the figures' wording in the report."""
import tempfile
import unittest
from pathlib import Path
from types import SimpleNamespace

from .report import advantage, cell, describe_failures, ratio_of, ratio_text, summarize
from .util import fmt_bytes, fmt_range, fmt_seconds, fmt_value
from .workloads import Figures


class RatioTest(unittest.TestCase):
    def test_time_is_a_speed_up(self):
        self.assertEqual(ratio_of("time", 2.0, 4.0), 2.0)     # ours takes half: 2× faster
        self.assertEqual(ratio_of("time", 0, 4.0), float("inf"))

    def test_size_memory_tput_are_ours_over_peer(self):
        for kind in ("size", "memory", "tput"):
            self.assertEqual(ratio_of(kind, 7, 10), 0.7)
        self.assertEqual(ratio_of("size", 7, 0), float("inf"))

    def test_advantage_is_higher_better(self):
        self.assertEqual(advantage("size", 0.5), 2.0)
        self.assertEqual(advantage("memory", 2.0), 0.5)
        self.assertEqual(advantage("time", 3.0), 3.0)
        self.assertEqual(advantage("tput", 0.8), 0.8)


class FormatTest(unittest.TestCase):
    def test_numbers(self):
        self.assertEqual(fmt_seconds(1.23456), "1.235 s")
        self.assertEqual(fmt_seconds(12.345), "12.3 s")
        self.assertEqual(fmt_bytes(999), "999 B")
        self.assertEqual(fmt_bytes(1500), "1.50 kB")
        self.assertEqual(fmt_bytes(2_500_000_000), "2.50 GB")
        self.assertEqual(fmt_value("memory", 2048), "2.0 MB")
        self.assertEqual(fmt_value("tput", 1234.4), "1234 tx/s")
        self.assertEqual(fmt_range("time", 1, 2), "1.000–2.000")
        self.assertEqual(fmt_range("size", 1, 2), "")

    def test_ratio_text(self):
        self.assertEqual(ratio_text("time", 2.0), "2.00× faster")
        self.assertEqual(ratio_text("size", 0.5, [0.4, 0.6]), "0.50× the size (0.40–0.60)")
        self.assertEqual(ratio_text("size", 0.5, [0.5, 0.502]), "0.50× the size")

    def test_failures_and_cells(self):
        fails = [dict(rep=1, kind="crash", msg="x"), dict(rep=2, kind="timeout", msg="y"),
                 dict(rep=3, kind="crash", msg="z")]
        self.assertEqual(describe_failures(fails, 3), "server crashed (2/3), timed out (1/3)")
        self.assertEqual(describe_failures([], 3, wrong=["rep 1: bad"]), "wrong result (1/3)")
        self.assertEqual(describe_failures([dict(rep=1, kind="refused", msg="")], 3),
                         "refused by the engine")
        self.assertEqual(cell("time", None, [], 3), "—")
        s = dict(median=1.5, min=1.0, max=2.0, n=3)
        self.assertEqual(cell("time", s, [], 3), "1.500 s (1.000–2.000)")
        self.assertEqual(cell("time", s, fails[:1], 3), "1.500 s (1.000–2.000); server crashed (1/3)")
        m = dict(median=4096, min=4096, max=4096, n=1)
        self.assertEqual(cell("memory", m, [], 1, base=2048), "4.0 MB, +2.0 MB over a fresh server")


def bench(results, available=None):
    return SimpleNamespace(results=results, available=available or {
        k: (True, "") for k in results})


class SummarizeTest(unittest.TestCase):
    def test_ratio_range_and_target(self):
        b = bench({"rust_csv": {"scan": Figures([1.0, 2.0, 1.5])},
                   "csv": {"scan": Figures([4.0, 6.0, 5.0])}})
        rows = summarize(b)
        self.assertEqual([r["workload"] for r in rows], ["scan"])
        r = rows[0]
        self.assertEqual(r["pair"], "rust_csv-vs-csv")
        self.assertAlmostEqual(r["ratio"], 5.0 / 1.5)
        self.assertEqual(r["ratio_range"], [4.0 / 2.0, 6.0 / 1.0])
        self.assertEqual(r["target"], [">=", 2.0])
        self.assertTrue(r["met"])

    def test_missed_target_and_size_direction(self):
        b = bench({"rust_archive": {"size": Figures([80]), "scan": Figures([3.0])},
                   "archive": {"size": Figures([100]), "scan": Figures([3.0])}})
        rows = {r["workload"]: r for r in summarize(b)}
        self.assertAlmostEqual(rows["size"]["ratio"], 0.8)
        self.assertFalse(rows["size"]["met"])          # target: <= 0.7
        self.assertAlmostEqual(rows["scan"]["ratio"], 1.0)
        self.assertFalse(rows["scan"]["met"])          # target: >= 2.0

    def test_failures_give_no_ratio(self):
        b = bench({"rust_csv": {"scan": Figures([], [dict(rep=1, kind="crash", msg="x")])},
                   "csv": {"scan": Figures([5.0])}})
        r = summarize(b)[0]
        self.assertNotIn("ratio", r)
        self.assertEqual(r["ours_failures"][0]["kind"], "crash")

    def test_unavailable_layout_keeps_its_targets(self):
        b = bench({}, available={"rust_btree": (False, "no BTREE"), "innodb": (True, "")})
        rows = summarize(b)
        self.assertTrue(rows)
        self.assertTrue(all(r["target"] and not r["available"] for r in rows))
        self.assertEqual(rows[0]["unavailable_reason"], "no BTREE")

    def test_engines_not_asked_for_are_left_out(self):
        self.assertEqual(summarize(bench({"csv": {"scan": Figures([1.0])}})), [])


if __name__ == "__main__":
    unittest.main()


class StringKeySection(unittest.TestCase):
    """ci/bench --string-keys writes its section between markers; the main report,
    written again, keeps it."""

    def test_section_is_replaced_and_kept(self):
        from . import strkeys
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "benchmarks.md"
            p.write_text("# Benchmarks\n\nmain part\n")
            strkeys.put_section(p, f"{strkeys.BEGIN}\nfirst\n{strkeys.END}")
            strkeys.put_section(p, f"{strkeys.BEGIN}\nsecond\n{strkeys.END}")
            text = p.read_text()
            self.assertEqual(text.count(strkeys.BEGIN), 1)
            self.assertIn("second", text)
            self.assertNotIn("first", text)
            self.assertTrue(text.startswith("# Benchmarks\n\nmain part\n"))
            new = strkeys.keep_section(text, "# Benchmarks\n\nregenerated\n")
            self.assertIn("regenerated", new)
            self.assertIn("second", new)

    def test_values_are_unique(self):
        from . import strkeys
        self.assertEqual(len({strkeys.value(i, 20000) for i in range(20000)}), 20000)
