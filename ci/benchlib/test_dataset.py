"""The data set is deterministic, and its expected results agree with its rows."""
import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

from .dataset import COLUMNS, make_dataset


def quiet(f, *a, **k):
    with contextlib.redirect_stderr(io.StringIO()):
        return f(*a, **k)


class DatasetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def make(self, sub, rows=300, seed=7, batch=50):
        return quiet(make_dataset, rows, seed, batch, self.dir / sub)

    def test_same_seed_same_bytes(self):
        a = self.make("a")
        b = self.make("b")
        self.assertEqual(a[0].read_bytes(), b[0].read_bytes())
        self.assertEqual(a[1].read_bytes(), b[1].read_bytes())
        self.assertEqual(a[2], b[2])

    def test_other_seed_other_rows(self):
        a = self.make("a", seed=7)
        b = self.make("b", seed=8)
        self.assertNotEqual(a[0].read_bytes(), b[0].read_bytes())
        self.assertNotEqual(a[2]["scan"], b[2]["scan"])

    def test_cached_not_regenerated(self):
        tsv, _, _ = self.make("a")
        before = tsv.stat().st_mtime_ns
        tsv.write_text(tsv.read_text())          # same bytes, a new mtime
        marked = tsv.stat().st_mtime_ns
        tsv2, _, _ = self.make("a")
        self.assertEqual(tsv2, tsv)
        self.assertEqual(tsv.stat().st_mtime_ns, marked)
        self.assertGreaterEqual(marked, before)

    def test_expected_results_match_the_rows(self):
        """The expected figures, recomputed from the LOAD DATA file on their own."""
        tsv, sql, m = self.make("a", rows=300, batch=50)
        rows = [line.split("\t") for line in tsv.read_text(encoding="utf-8").splitlines()]
        self.assertEqual(len(rows), 300)
        self.assertTrue(all(len(r) == len(COLUMNS) for r in rows))
        self.assertEqual([int(r[0]) for r in rows], list(range(1, 301)))
        self.assertEqual(m["sum_k"], sum(int(r[1]) for r in rows))
        hit = [r for r in rows if int(r[2]) >= 50 and r[8] != "gamma"]
        cents = sum(int(r[4].replace(".", "")) for r in hit)
        want = "\t".join(str(x) for x in (
            len(hit), f"{cents // 100}.{cents % 100:02d}", sum(int(r[3]) for r in hit),
            min(r[6] for r in hit), max(r[7] for r in hit), max(len(r[10]) for r in hit)))
        self.assertEqual(m["scan"], want)
        self.assertEqual(m["update_rows"], sum(1 for r in rows if int(r[0]) % 10 == 0))
        self.assertEqual(m["delete_rows"], sum(1 for r in rows if int(r[0]) % 10 == 5))
        self.assertEqual(m["sum_id_after_delete"],
                         sum(int(r[0]) for r in rows if int(r[0]) % 10 != 5))
        self.assertEqual(sql.read_text(encoding="utf-8").count("INSERT INTO t VALUES"), 6)
        self.assertEqual(json.loads(Path(f"{tsv.with_suffix('')}.json").read_text()), m)


if __name__ == "__main__":
    unittest.main()
