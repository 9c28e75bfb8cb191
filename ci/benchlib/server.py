"""The scratch server (through ci/lib.sh) and a client with a time limit on every
statement that notices crashes and hangs."""
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from .config import LIB, PLUGIN_SNAPSHOT
from .util import HarnessError, note, proc_alive, proc_mem


@dataclass
class Outcome:
    kind: str                   # ok, error, refused, crash, timeout
    out: str = ""
    err: str = ""
    seconds: float = 0.0        # server-side elapsed time of a timed statement
    rows: int = -1              # ROW_COUNT() after a timed statement

    @property
    def ok(self):
        return self.kind == "ok"

    def why(self):
        return (self.err or self.out).strip().splitlines()[-1][:300] if (self.err or self.out).strip() else self.kind


# Errors with which an engine declines a statement it does not support.
REFUSED = {"1031", "1178", "1036", "1289", "1030"}
CRASH_LOG = re.compile(r"got signal|corrupted size|double free|free\(\): |malloc\(\)|"
                       r"Assertion .* failed|terminate called|stack_bottom")


class Server:
    def __init__(self, directory, options, log=None):
        self.dir = Path(directory)
        self.options = list(options)
        self.sock = self.dir / "sock"
        self.pid = None
        self.pgid = None
        self.restarts = 0
        self.events = []         # crashes and restarts, for the report
        self.child = None        # the client currently running (killed on interrupt)
        self.peak = 0            # highest VmHWM (KiB) of the processes since reset_peak()

    # -- lifecycle, through ci/lib.sh --------------------------------------------------
    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.log", "ab") as log:
            p = subprocess.Popen(["bash", "-c", '. "$0"; PLUGIN_DIR=$1; shift; start_server "$@"',
                                  str(LIB), str(PLUGIN_SNAPSHOT), str(self.dir), *self.options],
                                 stdout=log, stderr=log, start_new_session=True)
            self.pgid = p.pid
            try:
                rc = p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0:
            tail = (self.dir / "start.log").read_text(errors="replace")[-2000:]
            self.kill()
            raise HarnessError(f"the scratch server did not start (see {self.dir}/error.log):\n{tail}")
        self.pid = int((self.dir / "pid").read_text().strip())

    def stop(self, patience=60):
        """ci/lib.sh's stop_server (a clean shutdown), unless the server does not answer
        or takes longer than `patience` seconds: then SIGKILL."""
        if self.pid is None and not (self.dir / "pid").exists():
            return
        if self.pid:
            self.peak = max(self.peak, proc_mem(self.pid).get("VmHWM", 0))
        if not self.responsive():
            self.kill()
            return
        self.kill_queries()     # an interrupted client's statement would delay the shutdown
        p = subprocess.Popen(["bash", "-c", '. "$0"; stop_server "$1"', str(LIB), str(self.dir)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            p.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        self.kill()

    def kill(self):
        """SIGKILL the server (and whatever its starter left in its process group)."""
        pid = self.pid
        if pid is None and (self.dir / "pid").exists():
            try:
                pid = int((self.dir / "pid").read_text().strip())
            except ValueError:
                pid = None
        if pid:
            self.peak = max(self.peak, proc_mem(pid).get("VmHWM", 0))
        for target in ([pid] if pid else []):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        for _ in range(100):
            if not pid or not proc_alive(pid):
                break
            time.sleep(0.1)
        (self.dir / "pid").unlink(missing_ok=True)
        self.pid = None
        self.pgid = None

    def wipe(self):
        self.stop()
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        log = self.dir / "error.log"
        if log.exists():            # one run's log only (the previous one kept beside)
            log.replace(self.dir / "error.log.previous")

    def install_plugins(self):
        have = set(self.query("SELECT ENGINE FROM information_schema.ENGINES "
                              "WHERE SUPPORT IN ('YES','DEFAULT')").split())
        if "ARCHIVE" not in have:
            o = self.run("INSTALL SONAME 'ha_archive'")
            if not o.ok:
                raise HarnessError(f"INSTALL SONAME 'ha_archive' failed: {o.why()}")
        if "RUST" not in have:
            o = self.run("INSTALL PLUGIN rust SONAME 'ha_rust.so'")
            if not o.ok:
                raise HarnessError(f"INSTALL PLUGIN rust SONAME 'ha_rust.so' failed: {o.why()}")

    def restart(self, reason):
        """A fresh server process on the same data folder; a fresh data folder if that
        one will not start any more. The old one crashed or hangs: it is killed, not
        asked to shut down."""
        self.restarts += 1
        self.events.append(reason)
        note(f"restarting the server ({reason})")
        self.kill()
        try:
            self.start()
        except HarnessError:
            note("the server did not come back on its data folder; starting on a new one")
            self.wipe()
            self.start()
        self.install_plugins()

    def log_size(self):
        try:
            return (self.dir / "error.log").stat().st_size
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.dir / "error.log", "rb") as f:
                f.seek(offset)
                return f.read(1 << 20).decode(errors="replace")
        except OSError:
            return ""

    # -- running things ---------------------------------------------------------------
    def client(self, db=None):
        cmd = ["mariadb", "--no-defaults", "-S", str(self.sock), "-uroot", "-N", "-B",
               "--default-character-set=utf8mb4"]
        return cmd + (["-D", db] if db else [])

    def execute(self, cmd, timeout, stdin=None):
        """Runs a client program (mariadb, sysbench) against the server with a time
        limit, watching the server: a dead server or a crash report in its error log
        ends the wait at once, and the server is replaced by a fresh one."""
        start_log = self.log_size()
        deadline = time.monotonic() + timeout
        p = subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, errors="replace")
        self.child = p
        out = err = ""
        crash = None
        timed_out = False
        try:
            while True:
                try:
                    out, err = p.communicate(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self.pid and not proc_alive(self.pid):
                    crash = "the server died"
                elif CRASH_LOG.search(self.log_since(start_log)):
                    crash = "the server reported a crash"
                timed_out = time.monotonic() > deadline
                if crash or timed_out:
                    p.kill()
                    out, err = p.communicate()
                    break
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            self.child = None
        text = self.log_since(start_log)
        if not crash and (not self.pid or not proc_alive(self.pid)):
            crash = "the server died"
        if not crash and CRASH_LOG.search(text):
            crash = "the server reported a crash"
        if crash:
            m = CRASH_LOG.search(text)
            line = ""
            if m:
                s = text.rfind("\n", 0, m.start()) + 1
                e = text.find("\n", m.end())
                line = text[s:e if e >= 0 else None].strip()
            msg = f"{crash}: {line}" if line else crash
            for _ in range(30):                    # let its crash handler write its report
                if not self.pid or not proc_alive(self.pid):
                    break
                time.sleep(0.1)
            self.restart(msg)
            return Outcome("crash", out, msg)
        if timed_out:
            msg = f"no answer within {timeout} s"
            if self.responsive():
                self.kill_queries()
            else:
                msg += "; the server did not answer either"
                self.restart(f"hung after {timeout} s")
            return Outcome("timeout", out, msg)
        if p.returncode != 0:
            m = re.search(r"ERROR (\d+)", err)
            kind = "refused" if m and m.group(1) in REFUSED else "error"
            return Outcome(kind, out, err)
        return Outcome("ok", out, err)

    def run(self, sql, db=None, timeout=120):
        return self.execute(self.client(db) + ["-e", sql], timeout)

    def query(self, sql, db=None, timeout=60):
        o = self.run(sql, db, timeout)
        if not o.ok:
            raise HarnessError(f"{sql!r} failed: {o.why()}")
        return o.out.strip()

    def timed(self, stmt, db, timeout):
        """One statement (or a `source FILE`), timed by the server's own clock so that
        starting the client is not counted."""
        sql = (f"SET @bench_t0 = SYSDATE(6);\n{stmt}\n"
               f"SELECT 'BENCH', ROW_COUNT(), TIMESTAMPDIFF(MICROSECOND, @bench_t0, SYSDATE(6));")
        o = self.run(sql, db, timeout)
        if o.ok:
            lines = o.out.rstrip("\n").split("\n")
            m = re.match(r"BENCH\t(-?\d+)\t(\d+)$", lines[-1]) if lines else None
            if not m:
                return Outcome("error", o.out, "no timing line in the client's output")
            o.rows, o.seconds = int(m.group(1)), int(m.group(2)) / 1e6
            o.out = "\n".join(lines[:-1])
        return o

    def responsive(self):
        try:
            r = subprocess.run(self.client() + ["-e", "SELECT 1"], capture_output=True,
                               timeout=10)
            return r.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def kill_queries(self):
        try:
            ids = subprocess.run(
                self.client() + ["-e", "SELECT ID FROM information_schema.PROCESSLIST "
                                       "WHERE COMMAND <> 'Daemon' AND ID <> CONNECTION_ID()"],
                capture_output=True, text=True, timeout=10).stdout.split()
            for i in ids:
                subprocess.run(self.client() + ["-e", f"KILL {int(i)}"], capture_output=True,
                               timeout=10)
        except (subprocess.SubprocessError, ValueError):
            pass

    def memory(self):
        """VmRSS of the running server; VmHWM: the peak of every server process since
        reset_peak() (a server replaced after a crash included, as far as it was read)."""
        m = proc_mem(self.pid) if self.pid else {}
        m["VmHWM"] = max(self.peak, m.get("VmHWM", 0))
        return m

    def reset_peak(self):
        self.peak = 0
