# Sourced by the channel bench scripts (bench-matrix.sh, bench-email.sh):
# a temp work dir cleaned up on exit, the release binary, and `policybot
# serve` in the background.
#
#   bench_init NAME            # sets work (a temp dir) and the exit trap; the
#                              # caller defines stop_servers, run at exit
#   build_release              # sets bin
#   start_serve READY_PREFIX   # serves $work/policybot.toml; sets serve_pid
#
# serve writes $work/serve.out and $work/serve.log; on failure the log is
# shown and the script exits.

bench_init() {
    work="$(mktemp -d "/tmp/policybot-bench-$1.XXXXXX")"
    # Mail servers run as their own users and must reach it.
    chmod 755 "$work"
    serve_pid=""
    trap bench_cleanup EXIT
}

bench_cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
    stop_servers >/dev/null 2>&1 || true
    rm -rf "$work"
}

build_release() {
    cargo build --release --quiet --bin policybot --manifest-path "$repo/Cargo.toml"
    bin="$repo/target/release/policybot"
}

start_serve() {
    local ready=$1
    "$bin" --config "$work/policybot.toml" serve --bind 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.log" &
    serve_pid=$!
    for _ in $(seq 120); do
        grep -q "$ready" "$work/serve.out" 2>/dev/null && return 0
        kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "policybot serve exited" >&2; exit 1; }
        sleep 0.5
    done
    cat "$work/serve.log" >&2
    echo "the bot did not print '$ready'" >&2
    exit 1
}
