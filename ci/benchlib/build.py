"""Which ha_rust.so is measured: the source it was built from and a private copy
of it, so that a rebuild during the run changes nothing."""
import hashlib
import shutil
from .config import BUILD, PLUGIN_SNAPSHOT, ROOT
from .util import sh


BUILT = {"text": "", "commit": "", "uncommitted": []}


def note_build():
    """Which source the plugin was built from: HEAD and the files that differed from it
    at build time (the tree may be edited while the benchmark runs)."""
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    st = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--",
             "src", "cpp", "build.rs", "Cargo.toml", "Cargo.lock"])
    dirty = [line.split(maxsplit=1)[1] for line in st.splitlines() if len(line.split()) > 1]
    text = commit
    if dirty:
        text += (f" plus uncommitted changes to {', '.join(dirty[:8])}"
                 + (f" and {len(dirty) - 8} more files" if len(dirty) > 8 else ""))
    BUILT.update(text=text, commit=commit, uncommitted=dirty)


def snapshot_plugin():
    """Our own plugin folder: a copy of the ha_rust.so just built, beside links to the
    server's plugins, so that a rebuild by someone else during the run (ci/test and
    ci/demo share build/plugin) cannot change what a restarted server loads."""
    shutil.rmtree(PLUGIN_SNAPSHOT, ignore_errors=True)
    PLUGIN_SNAPSHOT.mkdir(parents=True)
    for f in (BUILD / "plugin").iterdir():
        if f.name != "ha_rust.so":
            (PLUGIN_SNAPSHOT / f.name).symlink_to(f.resolve())
    so = PLUGIN_SNAPSHOT / "ha_rust.so"
    shutil.copy2(BUILD / "plugin" / "ha_rust.so", so)
    BUILT["ha_rust.so sha256"] = hashlib.sha256(so.read_bytes()).hexdigest()
    BUILT["text"] += f" (ha_rust.so sha256 {BUILT['ha_rust.so sha256'][:12]})"
