# Shared helpers for ci/ scripts: paths, building, and a scratch mariadbd.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
PLUGIN_DIR=$BUILD/plugin
export HA_RUST_DEPS=${HA_RUST_DEPS:-$HOME/.cache/ha_rust}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Builds ha_rust.so and lays out a plugin folder holding it beside the server's own
# plugins (ha_archive.so ...), so one --plugin-dir serves both.
build_plugin() {
  "$ROOT/ci/setup"
  # shellcheck disable=SC1091
  . "$HA_RUST_DEPS/env"
  export MARIADB_SRC MARIADB_INCLUDE
  say "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
  mkdir -p "$PLUGIN_DIR"
  local sys
  sys=$(server_plugin_dir)
  for f in "$sys"/*; do
    [ -e "$PLUGIN_DIR/$(basename "$f")" ] || ln -s "$f" "$PLUGIN_DIR/"
  done
  rm -f "$PLUGIN_DIR/ha_rust.so"
  cp "$ROOT/target/release/libha_rust.so" "$PLUGIN_DIR/ha_rust.so"
}

server_plugin_dir() {
  /usr/sbin/mariadbd --no-defaults --help --verbose 2>/dev/null |
    awk '$1=="plugin-dir" {print $2}'
}

# start_server DIR [extra mariadbd options...]: a private server on a socket in DIR.
start_server() {
  local dir
  mkdir -p "$1"; dir=$(cd "$1" && pwd); shift
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal >"$dir/install.log" 2>&1 ||
      { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
  fi
  # a tmpdir of its own: a server starting deletes every #sql* file in its tmpdir,
  # so servers sharing /tmp delete each other's temporary tables
  mkdir -p "$dir/tmp"
  /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" --socket="$dir/sock" \
    --pid-file="$dir/pid" --skip-networking --plugin-dir="$PLUGIN_DIR" \
    --log-error="$dir/error.log" --user="$(id -un)" --secure-file-priv="$dir" "$@" &
  local i
  for i in $(seq 1 300); do
    if mariadb --no-defaults -S "$dir/sock" -uroot -e 'select 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$dir/error.log" >&2
  die "the scratch server did not start (log: $dir/error.log)"
}

stop_server() {
  local dir=$1 pid
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  mariadb-admin --no-defaults -S "$dir/sock" -uroot shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

sql() { local dir; dir=$(cd "$1" && pwd); shift; mariadb --no-defaults -S "$dir/sock" -uroot "$@"; }
