"""The deterministic data set: LOAD DATA file, INSERT batches and the expected
results of the workloads, computed independently of any engine."""
import datetime
import json
import random
import time
from pathlib import Path
from .config import DATASET_DIR, DATASET_VERSION
from .util import fmt_bytes, note, say


COLUMNS = [
    ("id", "INT NOT NULL"),
    ("k", "INT NOT NULL"),
    ("qty", "INT NOT NULL"),
    ("amount", "BIGINT NOT NULL"),
    ("price", "DECIMAL(10,2) NOT NULL"),
    ("ratio", "DECIMAL(7,3) NOT NULL"),
    ("created", "DATE NOT NULL"),
    ("updated", "DATETIME NOT NULL"),
    ("tag", "VARCHAR(12) NOT NULL"),
    ("name", "VARCHAR(40) NOT NULL"),
    ("note", "TEXT NOT NULL"),
]
TAGS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
SCAN_SQL = ("SELECT COUNT(*), SUM(price), SUM(amount), MIN(created), MAX(updated), "
            "MAX(CHAR_LENGTH(note)) FROM t WHERE qty >= 50 AND tag <> 'gamma'")
UPDATE_SQL = "UPDATE t SET k = k + 1 WHERE id % 10 = 0"
DELETE_SQL = "DELETE FROM t WHERE id % 10 = 5"


def create_sql(engine):
    cols = ",\n  ".join(f"{n} {t}" for n, t in COLUMNS)
    if engine.pk:
        cols += ",\n  PRIMARY KEY (id)"
    return f"CREATE TABLE t (\n  {cols}\n) {engine.clause}"


def make_dataset(rows, seed, batch, directory=None):
    """Writes the rows once as a LOAD DATA file (tab-separated, MariaDB's default
    escapes) and as multi-row INSERT batches; returns their paths and the expected
    results of the scan, UPDATE and DELETE statements (computed here, independently of
    any engine). Cached by (rows, seed, batch, generator version) in `directory`
    (default DATASET_DIR)."""
    directory = Path(directory or DATASET_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"rows{rows}-seed{seed}-b{batch}-v{DATASET_VERSION}"
    tsv, sql, meta = Path(f"{stem}.tsv"), Path(f"{stem}.sql"), Path(f"{stem}.json")
    if tsv.exists() and sql.exists() and meta.exists():
        return tsv, sql, json.loads(meta.read_text())
    for old in directory.glob("rows*-v*.*"):
        if not old.name.startswith("rows") or f"-v{DATASET_VERSION}." not in old.name:
            old.unlink()            # another generator version's files
    say(f"generating the data set: {rows} rows, seed {seed} ({stem.name})")
    t0 = time.monotonic()
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "an", "el", "or", "us", "ber",
            "din", "gar", "hol", "jen", "mor", "pel", "qua", "ros", "tin", "wal", "zen"]
    vocab = sorted({"".join(rng.choice(syll) for _ in range(rng.randint(1, 4)))
                    for _ in range(600)})
    accented = ["é", "ü", "ø", "ñ", "ç", "ß"]
    names = []
    for _ in range(5000):
        n = "".join(rng.choice(syll) for _ in range(rng.randint(2, 4))).capitalize()
        if rng.random() < 0.15:
            n += rng.choice(accented)
        n += " " + "".join(rng.choice(syll) for _ in range(rng.randint(2, 5))).capitalize()
        names.append(n[:40])
    base_day = datetime.date(2000, 1, 1).toordinal()
    exp = dict(count=0, price=0, amount=0, created=None, updated=None, maxlen=0)
    sum_k = 0
    tmp_tsv, tmp_sql = Path(f"{tsv}.tmp"), Path(f"{sql}.tmp")
    with open(tmp_tsv, "w", encoding="utf-8", newline="\n") as ft, \
            open(tmp_sql, "w", encoding="utf-8", newline="\n") as fs:
        values = []
        for i in range(1, rows + 1):
            k = rng.randrange(1_000_000)
            sum_k += k
            qty = rng.randrange(100)
            amount = rng.randrange(-10**12, 10**12)
            cents = rng.randrange(10**7)
            price = f"{cents // 100}.{cents % 100:02d}"
            milli = rng.randrange(-99999, 100000)
            ratio = f"{'-' if milli < 0 else ''}{abs(milli) // 1000}.{abs(milli) % 1000:03d}"
            day = base_day + rng.randrange(9000)
            created = datetime.date.fromordinal(day).isoformat()
            secs = rng.randrange(86400 * 30)
            upd = datetime.datetime.fromordinal(day) + datetime.timedelta(seconds=secs)
            updated = upd.strftime("%Y-%m-%d %H:%M:%S")
            tag = TAGS[rng.randrange(len(TAGS))]
            name = names[rng.randrange(len(names))]
            words = rng.choices(vocab, k=rng.randint(8, 60))
            if rng.random() < 0.3:
                words[rng.randrange(len(words))] += ","
            if rng.random() < 0.1:
                j = rng.randrange(len(words))
                words[j] = '"' + words[j] + '"'
            text = " ".join(words).capitalize() + "."
            if qty >= 50 and tag != "gamma":
                exp["count"] += 1
                exp["price"] += cents
                exp["amount"] += amount
                exp["created"] = min(exp["created"] or created, created)
                exp["updated"] = max(exp["updated"] or updated, updated)
                exp["maxlen"] = max(exp["maxlen"], len(text))
            ft.write(f"{i}\t{k}\t{qty}\t{amount}\t{price}\t{ratio}\t{created}\t{updated}\t"
                     f"{tag}\t{name}\t{text}\n")
            q = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"
            values.append(f"({i},{k},{qty},{amount},{price},{ratio},'{created}','{updated}',"
                          f"{q(tag)},{q(name)},{q(text)})")
            if len(values) == batch or i == rows:
                fs.write("INSERT INTO t VALUES\n" + ",\n".join(values) + ";\n")
                values = []
    pc = exp["price"]
    scan = "\t".join(str(x) for x in (
        exp["count"], f"{pc // 100}.{pc % 100:02d}", exp["amount"], exp["created"],
        exp["updated"], exp["maxlen"]))
    m = dict(rows=rows, seed=seed, batch=batch, scan=scan,
             update_rows=rows // 10, delete_rows=(rows + 5) // 10, sum_k=sum_k,
             sum_id_after_delete=rows * (rows + 1) // 2 - sum(range(5, rows + 1, 10)),
             tsv_bytes=tmp_tsv.stat().st_size, sql_bytes=tmp_sql.stat().st_size)
    tmp_tsv.rename(tsv)
    tmp_sql.rename(sql)
    meta.write_text(json.dumps(m, indent=1))
    note(f"{fmt_bytes(m['tsv_bytes'])} LOAD DATA file, {fmt_bytes(m['sql_bytes'])} of INSERTs, "
         f"{time.monotonic() - t0:.1f} s")
    return tsv, sql, m
