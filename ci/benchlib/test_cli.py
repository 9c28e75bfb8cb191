"""The command line: modes, lists, refused names, and what the run's parameters become."""
import contextlib
import io
import unittest

from .cli import parse_args
from .workloads import Bench


def fails(argv):
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        parse_args(argv)
        return False
    return True


class CliTest(unittest.TestCase):
    def test_modes(self):
        self.assertEqual(parse_args([])[1], "full")
        self.assertEqual(parse_args(["--quick"])[1], "quick")

    def test_lists(self):
        args, _ = parse_args(["--engines", "rust_csv,csv", "--workloads", "scan,sb"])
        self.assertEqual(args.engines, ["rust_csv", "csv"])
        self.assertEqual(args.workloads, ["scan", "sb_"])

    def test_unknown_names_refused(self):
        self.assertTrue(fails(["--engines", "rust_csv,nosuch"]))
        self.assertTrue(fails(["--workloads", "scan,nosuch"]))
        self.assertTrue(fails(["--profile", "size"]))
        self.assertFalse(fails(["--profile", "scan", "--engine", "innodb"]))

    def test_parameters(self):
        args, mode = parse_args(["--quick", "--rows", "1000", "--reps", "2"])
        p = Bench(args, mode).p
        self.assertEqual((p["rows"], p["reps"], p["sb_rows"], p["timeout"]), (1000, 2, 1000, 120))
        args, mode = parse_args(["--timeout", "50"])
        p = Bench(args, mode).p
        self.assertEqual((p["rows"], p["reps"], p["timeout"]), (1_000_000, 5, 50))


if __name__ == "__main__":
    unittest.main()
