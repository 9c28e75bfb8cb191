"""A scratch server for the python harnesses in ci/ (ci/crashloop, ci/stress): the stock
mariadbd with build/plugin/ha_rust.so on a socket in a folder of its own, started and
killed by the harness itself (so that it can SIGKILL it), and what the harnesses need
around it. The shell scripts use ci/lib.sh's start_server/stop_server, which start the
server the same way."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

try:
    import pymysql
except ImportError:  # pragma: no cover
    sys.exit("this harness needs pymysql: apt-get install python3-pymysql (ci/setup does)")

# pymysql error codes that mean "the server went away" (the statement's fate unknown)
GONE = {2003, 2006, 2013, 2055}
# expected refusals, after which the transaction is rolled back (nothing of it stays)
RETRY = {1205, 1213}          # ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK
# What the server's error log holds after a crash or a failed assertion.
CRASH_LOG = re.compile(r"got signal|Assertion .* failed|terminate called|stack_bottom|"
                       r"corrupted size|double free|free\(\): |malloc\(\)|panicked at")


class Violation(Exception):
    """A broken promise the harness found (or a server that would not start)."""


def conn_gone(e):
    if isinstance(e, (ConnectionError, OSError, EOFError, pymysql.err.InterfaceError)):
        return True
    if isinstance(e, pymysql.err.OperationalError):
        code = e.args[0] if e.args else None
        return not isinstance(code, int) or code in GONE
    return False


def user():
    return "root" if os.geteuid() == 0 else os.environ.get("USER", "root")


class Server:
    """`extra`: mariadbd options beyond the ones every scratch server has (the data
    folder, socket, plugin folder, error log, ha_rust.so loaded)."""

    def __init__(self, base: Path, plugin_dir: Path, extra, db=None, timeout=60):
        self.base = base
        self.data = base / "data"
        self.sock = base / "sock"
        self.plugin_dir = plugin_dir
        self.extra = list(extra)
        self.db = db              # the default schema of connect()
        self.timeout = timeout    # connect()'s default read/write timeout
        self.proc = None
        self.start_secs = 2.0     # how long the last start took (for kills during one)

    def install(self):
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
                            f"--user={user()}", "--auth-root-authentication-method=normal"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit("mariadb-install-db failed:\n" + r.stdout[-3000:])

    def spawn(self):
        # a tmpdir of its own: a server deletes every #sql* file in its tmpdir when
        # it starts, so servers sharing /tmp (two harnesses at once, one of them
        # restarting its server) delete each other's temporary tables
        (self.base / "tmp").mkdir(parents=True, exist_ok=True)
        args = ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data}", f"--tmpdir={self.base}/tmp",
                f"--socket={self.sock}", f"--pid-file={self.base}/pid", "--skip-networking",
                f"--plugin-dir={self.plugin_dir}", f"--log-error={self.base}/error.log",
                f"--user={user()}", f"--secure-file-priv={self.base}",
                "--plugin-load-add=ha_rust.so"] + self.extra
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.spawned = time.time()

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Violation(f"the server exited ({self.proc.returncode}) while starting; "
                                f"error log:\n{self.log_tail(40)}")
            try:
                c = self.connect(db=None, timeout=10)
                c.close()
                self.start_secs = time.time() - self.spawned
                return
            except pymysql.err.OperationalError:
                time.sleep(0.05)
        raise Violation(f"the server did not start within {timeout} s; error log:\n{self.log_tail(40)}")

    def connect(self, db="", timeout=None):
        timeout = timeout or self.timeout
        return pymysql.connect(unix_socket=str(self.sock), user="root",
                               database=self.db if db == "" else db,
                               charset="utf8mb4", autocommit=True, read_timeout=timeout,
                               write_timeout=timeout, connect_timeout=10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def log_text(self):
        try:
            return (self.base / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30):
        text = self.log_text()
        return "\n".join(text.splitlines()[-n:]) if text else "(no error log)"

    def crash_lines(self):
        """Lines of the error log that tell of a crash, a failed assertion or a panic."""
        return [l for l in self.log_text().splitlines() if CRASH_LOG.search(l)]
