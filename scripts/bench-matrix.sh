#!/usr/bin/env bash
# Matrix question-to-reply latency, end to end on this machine: starts a
# throwaway Synapse (scripts/synapse.sh), registers the bot and a member of
# staff, runs `policybot serve` on the example school with the Matrix channel,
# and times QUESTIONS questions asked in a direct chat (default 200).
#
#   scripts/bench-matrix.sh [QUESTIONS] [--json]
#
# Builds the release binary first. Everything lives in a temp dir, removed at
# the end. Env: SYNAPSE_VENV (default target/synapse-venv), PORT (default 18449).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench-lib.sh
. "$repo/scripts/bench-lib.sh"
questions="${1:-200}"
json="${2:-}"
port="${PORT:-18449}"
export SYNAPSE_VENV="${SYNAPSE_VENV:-$repo/target/synapse-venv}"
stop_servers() { "$repo/scripts/synapse.sh" stop "$work/synapse"; }
bench_init matrix
build_release

url="$("$repo/scripts/synapse.sh" start "$work/synapse" "$port")"
password="bench-$(date +%s)"
for user in policybot amira; do
    "$repo/scripts/synapse.sh" register "$work/synapse" "$port" "$user" "$password" >/dev/null
done

cat > "$work/policybot.toml" <<TOML
index_dir = "$work/index"
store = "$work/policybot.sqlite3"

[matrix]
homeserver = "$url"
user = "@policybot:localhost"
password = "$password"
state_dir = "$work/matrix"

[[school]]
id = "oakfield"
name = "Oakfield Primary School"
policies = "$repo/policies/oakfield"

[[staff]]
name = "Amira Shah"
school = "oakfield"
role = "Year 4 teacher"
matrix = "@amira:localhost"
TOML

start_serve "policybot: matrix connected"

POLICYBOT_BENCH_PASSWORD="$password" "$bin" bench --matrix --matrix-homeserver "$url" \
    --matrix-user @amira:localhost --matrix-bot @policybot:localhost --questions "$questions" $json
