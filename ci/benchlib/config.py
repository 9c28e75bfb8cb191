"""What is compared and how: paths, modes, server settings, engines, workloads,
pairs and their targets."""
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent.parent
LIB = ROOT / "ci" / "lib.sh"
BUILD = ROOT / "build"
BENCH_DIR = BUILD / "bench"          # the scratch server: data/, sock, pid, error.log
DATASET_DIR = BENCH_DIR / "dataset"  # inside secure_file_priv (BENCH_DIR)
PLUGIN_SNAPSHOT = BENCH_DIR / "plugin"  # our own --plugin-dir: build/plugin/ha_rust.so can be
                                        # rebuilt by ci/test or ci/demo while we run
DATASET_VERSION = 2                  # bump when the generator changes
RAW_FORMAT = 3                       # build/bench/raw.json (see Bench.save_raw)

MODES = {
    #         rows      reps  statement time limit (s)  sysbench rows/secs/warm-up,
    #         the thread counts of sysbench's writing tests
    "quick": dict(rows=20_000, reps=3, timeout=120, sb_rows=20_000, sb_time=3, sb_warmup=3,
                  batch=500, sb_write_threads=[1, 4]),
    "full": dict(rows=1_000_000, reps=5, timeout=900, sb_rows=1_000_000, sb_time=5,
                 sb_warmup=5, batch=1000, sb_write_threads=[1, 4, 16, 64]),
}

# Settings that correspond across engines get the same value; the rest keep their
# defaults. The server prints every one of them back (see settings_report).
CACHE = "512M"
SERVER_OPTIONS = [
    f"--innodb-buffer-pool-size={CACHE}",       # InnoDB page cache
    f"--key-buffer-size={CACHE}",               # MyISAM index cache
    f"--aria-pagecache-buffer-size={CACHE}",    # Aria page cache
    f"--loose-rust-buffer-pool-size={CACHE}",   # RUST BTREE page cache (when the build has it)
    "--innodb-log-file-size=512M",
    "--loose-rust-log-file-size=512M",          # the same log between checkpoints for RUST BTREE
    "--innodb-flush-log-at-trx-commit=1",       # durable commit (the default)
    "--loose-rust-flush-log-at-trx-commit=1",   # the same for RUST BTREE
    "--innodb-buffer-pool-load-at-startup=0",   # every server starts cold and alike
    "--innodb-buffer-pool-dump-at-shutdown=0",
    "--skip-log-bin",
    "--query-cache-type=0",
    "--query-cache-size=0",
    "--max-allowed-packet=64M",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--skip-name-resolve",
]
SHOWN_VARIABLES = [
    "version", "innodb_buffer_pool_size", "key_buffer_size", "aria_pagecache_buffer_size",
    "innodb_log_file_size", "innodb_flush_log_at_trx_commit", "innodb_flush_method",
    "innodb_doublewrite", "aria_group_commit", "aria_log_purge_type", "sync_binlog",
    "log_bin", "query_cache_type", "max_allowed_packet", "character_set_server",
    "table_open_cache", "sql_mode",
]


# --------------------------------------------------------------------------------------
# Engines, workloads, pairings and targets
# --------------------------------------------------------------------------------------

@dataclass
class Engine:
    key: str
    label: str
    clause: str            # what follows the column list in CREATE TABLE
    ours: bool
    pk: bool = False       # clustered engines get PRIMARY KEY (id)
    sysbench: str = ""     # --mysql-storage-engine for sysbench's oltp tests (needs a PK)


ENGINES = [
    Engine("rust_csv", "RUST LAYOUT=CSV", "ENGINE=RUST LAYOUT=CSV", True),
    Engine("csv", "CSV", "ENGINE=CSV", False),
    Engine("rust_archive", "RUST LAYOUT=ARCHIVE", "ENGINE=RUST LAYOUT=ARCHIVE", True),
    Engine("archive", "ARCHIVE", "ENGINE=ARCHIVE", False),
    Engine("rust_btree", "RUST LAYOUT=BTREE", "ENGINE=RUST LAYOUT=BTREE", True, pk=True,
           sysbench="RUST LAYOUT=BTREE"),
    Engine("innodb", "InnoDB", "ENGINE=InnoDB", False, pk=True, sysbench="InnoDB"),
    Engine("myisam", "MyISAM", "ENGINE=MyISAM", False),
    Engine("aria", "Aria", "ENGINE=Aria", False),
]
BY_KEY = {e.key: e for e in ENGINES}

# kind: time (s, lower is better), size (bytes), memory (KiB), tput (tx/s, higher better)
WORKLOADS = {
    "load_data": ("bulk load: LOAD DATA INFILE", "time"),
    "insert": ("bulk load: multi-row INSERT batches", "time"),
    "scan": ("full scan with filter + aggregates", "time"),
    "update": ("UPDATE 10% of rows (k = k + 1)", "time"),
    "delete": ("DELETE 10% of rows", "time"),
    "size": ("on-disk size after load", "size"),
    "memory": ("peak server RSS (VmHWM)", "memory"),
    "sb_point_select_1": ("sysbench oltp_point_select, 1 thread", "tput"),
    "sb_point_select_2": ("sysbench oltp_point_select, 2 threads", "tput"),
    "sb_read_only_1": ("sysbench oltp_read_only, 1 thread", "tput"),
    "sb_read_only_2": ("sysbench oltp_read_only, 2 threads", "tput"),
}
# sysbench's writing tests (they change rows but keep the row count), at these threads
SB_WRITE_TESTS = ["oltp_read_write", "oltp_write_only", "oltp_update_index"]
SB_WRITE_THREADS = [1, 4, 16, 64]       # full mode; MODES[...]["sb_write_threads"]
for _t in SB_WRITE_TESTS:
    for _n in SB_WRITE_THREADS:
        WORKLOADS[f"sb_{_t[5:]}_{_n}"] = (
            f"sysbench {_t}, {_n} thread{'s' if _n > 1 else ''}", "tput")
SHORT = {
    "load_data": "LOAD DATA", "insert": "INSERT", "scan": "scan", "update": "UPDATE",
    "delete": "DELETE", "size": "size", "memory": "memory",
    "sb_point_select_1": "point sel. 1t", "sb_point_select_2": "point sel. 2t",
    "sb_read_only_1": "read-only 1t", "sb_read_only_2": "read-only 2t",
}
for _t, _s in zip(SB_WRITE_TESTS, ("r/w", "write-only", "upd. index")):
    for _n in SB_WRITE_THREADS:
        SHORT[f"sb_{_t[5:]}_{_n}"] = f"{_s} {_n}t"
del _t, _n, _s
PER_REP = ["load_data", "scan", "update", "delete", "insert"]
SYSBENCH = [("oltp_point_select", 1), ("oltp_point_select", 2),
            ("oltp_read_only", 1), ("oltp_read_only", 2)]      # read-only: every mode


def sb_workload(test, threads):
    """sysbench's test at that many threads as a workload: sb_read_write_4."""
    return f"sb_{test[5:]}_{threads}"


def sysbench_runs(write_threads):
    """(test, threads) in the order one repetition runs them: the read-only tests first
    (as before the writing tests came: their table is as prepared in repetition 1),
    then each writing test at each thread count."""
    return SYSBENCH + [(t, n) for t in SB_WRITE_TESTS for n in write_threads]


# Lock errors counted for each sysbench run, from server counters read before and after
# it: engine -> (deadlocks, lock wait timeouts), each ("status", GLOBAL_STATUS name) or
# ("metric", INNODB_METRICS name; counted only when that metric is enabled).
LOCK_COUNTERS = {
    "rust_btree": (("status", "Rust_lock_deadlocks"), ("status", "Rust_lock_wait_timeouts")),
    "innodb": (("status", "Innodb_deadlocks"), ("metric", "lock_timeouts")),
}


@dataclass
class Pair:
    ours: str
    peer: str
    targets: dict          # workload -> (op, value) on the ratio as reported (see ratio())


PAIRS = [
    Pair("rust_csv", "csv", {"load_data": (">=", 1.0), "insert": (">=", 1.0),
                             "scan": (">=", 2.0)}),
    Pair("rust_archive", "archive", {"load_data": (">=", 1.0), "insert": (">=", 1.0),
                                     "scan": (">=", 2.0), "size": ("<=", 0.7)}),
    Pair("rust_btree", "innodb", {"load_data": (">=", 1.0), "insert": (">=", 1.0),
                                  "size": ("<=", 1.2),
                                  "sb_point_select_1": (">=", 0.8),
                                  "sb_point_select_2": (">=", 0.8),
                                  "sb_read_only_1": (">=", 0.8),
                                  "sb_read_only_2": (">=", 0.8),
                                  # the writing tests: >= 0.8x at 4 threads and above as
                                  # the first step (the goal is 1.0x); 1 thread: no target
                                  **{sb_workload(t, n): (">=", 0.8)
                                     for t in SB_WRITE_TESTS for n in SB_WRITE_THREADS
                                     if n >= 4}}),
]
PAIR_WORKLOADS = ["load_data", "insert", "scan", "update", "delete", "size", "memory",
                  "sb_point_select_1", "sb_point_select_2", "sb_read_only_1",
                  "sb_read_only_2"] + [sb_workload(t, n) for t in SB_WRITE_TESTS
                                       for n in SB_WRITE_THREADS]
