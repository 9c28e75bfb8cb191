"""Small utilities: the harness's errors, progress lines, number formatting, /proc."""
import signal
import subprocess
import sys


class HarnessError(Exception):
    """The harness itself cannot go on (build, server start, plugin install)."""


class Interrupted(BaseException):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


COLOR = sys.stderr.isatty()


def say(msg):
    print(("\033[1m==> %s\033[0m" if COLOR else "==> %s") % msg, file=sys.stderr, flush=True)


def note(msg):
    print("    " + msg, file=sys.stderr, flush=True)


def fmt_seconds(s):
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def fmt_bytes(b):
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= div:
            return f"{b / div:.2f} {unit}"
    return f"{b} B"


def fmt_value(kind, v):
    if kind == "time":
        return fmt_seconds(v)
    if kind == "size":
        return fmt_bytes(v)
    if kind == "memory":
        return f"{v / 1024:.1f} MB"
    return f"{v:.0f} tx/s"


def fmt_range(kind, lo, hi):
    if kind == "time":
        return f"{lo:.3f}–{hi:.3f}" if hi < 10 else f"{lo:.1f}–{hi:.1f}"
    if kind == "tput":
        return f"{lo:.0f}–{hi:.0f}"
    return ""


def sh(cmd, timeout=60):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def proc_alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def proc_mem(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0])          # KiB
    except OSError:
        pass
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return ""
