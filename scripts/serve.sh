# Sourced by the bench scripts: runs `policybot serve` in the background and
# waits for the line that says its channel is up.
#
#   start_serve BIN CONFIG WORK_DIR READY_PREFIX   # sets serve_pid
#
# Output goes to WORK_DIR/serve.out and WORK_DIR/serve.log; on failure the log
# is shown and the script exits.
start_serve() {
    local bin=$1 config=$2 work=$3 ready=$4
    "$bin" --config "$config" serve --bind 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.log" &
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
