#!/usr/bin/env bash
# An acknowledgement campaign for a large staff, end to end on this machine:
# starts throwaway servers, puts STAFF members (default 10000) on the bot's
# staff list, runs `policybot serve` on the example school, plans a campaign
# and follows it until every nudge is sent (`policybot bench --campaign`,
# with a progress bar), then checks every member of staff got exactly one.
#
#   scripts/bench-campaign.sh [STAFF] [--json]
#   CHANNEL=matrix scripts/bench-campaign.sh 1000     # nudges over Synapse
#   KILL_AFTER=5000 scripts/bench-campaign.sh 10000   # kill -9 the bot after
#                                  # 5000 nudges are sent, restart it, go on
#
# CHANNEL=email (default): Postfix and Dovecot (scripts/mail.sh), a mailbox
# per member of staff, each mailbox checked. CHANNEL=matrix: Synapse
# (scripts/synapse.sh), a user per member of staff, each direct chat checked
# in Synapse's database. Builds the release binary first. Everything lives in
# a temp dir, removed at the end. Env: PORT (default 18700; uses
# PORT..PORT+3), PER_MINUTE (pacing, default 100000: as fast as the servers
# take them), SYNAPSE_VENV (default target/synapse-venv).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench-lib.sh
. "$repo/scripts/bench-lib.sh"
staff="${1:-10000}"
json="${2:-}"
channel="${CHANNEL:-email}"
port="${PORT:-18700}"
export SYNAPSE_VENV="${SYNAPSE_VENV:-$repo/target/synapse-venv}"
stop_servers() {
    if [ "$channel" = matrix ]; then "$repo/scripts/synapse.sh" stop "$work/synapse"; else "$repo/scripts/mail.sh" stop "$work/mail"; fi
}
bench_init campaign
build_release

password="bench-$(date +%s)"
users=()
for i in $(seq -f "%05g" 1 "$staff"); do users+=("staff$i"); done

cat > "$work/policybot.toml" <<TOML
index_dir = "$work/index"
store = "$work/policybot.sqlite3"
staff_csv = "$work/staff.csv"

[[school]]
id = "oakfield"
name = "Oakfield Primary School"
policies = "$repo/policies/oakfield"

[acknowledgements]
nudges_per_minute = ${PER_MINUTE:-100000}
TOML

if [ "$channel" = matrix ]; then
    url="$("$repo/scripts/synapse.sh" start "$work/synapse" "$port")"
    "$repo/scripts/synapse.sh" register-many "$work/synapse" "$port" "$password" policybot "${users[@]}"
    {
        echo "name,school,role,matrix,email"
        for user in "${users[@]}"; do echo "$user,oakfield,Teacher,@$user:localhost,"; done
    } > "$work/staff.csv"
    cat >> "$work/policybot.toml" <<TOML

[matrix]
homeserver = "$url"
user = "@policybot:localhost"
password = "$password"
state_dir = "$work/matrix"
TOML
    ready="policybot: matrix connected"
else
    imap=$port smtp=$((port + 1)) imaps=$((port + 2)) smtps=$((port + 3))
    "$repo/scripts/mail.sh" certs "$work/mail" >/dev/null
    "$repo/scripts/mail.sh" addusers "$work/mail" "$password" policy "${users[@]}"
    "$repo/scripts/mail.sh" start "$work/mail" "$imap" "$smtp" "$imaps" "$smtps" >/dev/null
    {
        echo "name,school,role,matrix,email"
        for user in "${users[@]}"; do echo "$user,oakfield,Teacher,,$user@example.test"; done
    } > "$work/staff.csv"
    cat >> "$work/policybot.toml" <<TOML

[email]
address = "policy@example.test"
password = "$password"
ca_file = "$work/mail/tls/ca.pem"
imap = { host = "127.0.0.1", port = $imaps, tls = "implicit" }
smtp = { host = "127.0.0.1", port = $smtp, tls = "starttls" }
TOML
    ready="policybot: email connected"
fi

start_serve "$ready"
if [ -z "${KILL_AFTER:-}" ]; then
    "$bin" --config "$work/policybot.toml" bench --campaign $json
else
    "$bin" --config "$work/policybot.toml" bench --campaign $json &
    bench_pid=$!
    sent() {
        python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from nudges where status='sent'\").fetchone()[0])" \
            "$work/policybot.sqlite3" 2>/dev/null || echo 0
    }
    until [ "$(sent)" -ge "$KILL_AFTER" ]; do sleep 0.2; done
    kill -9 "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
    echo "killed the bot (kill -9) with $(sent) nudges recorded sent; restarting it"
    rm -f "$work/serve.out"
    start_serve "$ready"
    wait "$bench_pid"
fi

if [ "$channel" = matrix ]; then
    # Each member of staff's direct chat with the bot holds exactly one nudge.
    python3 - "$work/synapse/homeserver.db" "$staff" <<'PY'
import sqlite3, sys
db, staff = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
rooms = dict(db.execute(
    "SELECT room_id, user_id FROM room_memberships WHERE membership = 'invite' AND user_id LIKE '@staff%'"))
sent = db.execute(
    "SELECT room_id, COUNT(*) FROM events WHERE sender = '@policybot:localhost' AND type = 'm.room.encrypted' GROUP BY room_id").fetchall()
per_user = {}
for room, n in sent:
    if room in rooms:
        per_user[rooms[room]] = per_user.get(rooms[room], 0) + n
missing = staff - len(per_user)
doubled = sum(1 for n in per_user.values() if n > 1)
print(f"delivered: {len(per_user)} of {staff} staff have their nudge in a direct chat; {missing} missing, {doubled} with more than one")
sys.exit(0 if missing == 0 and doubled == 0 else 1)
PY
else
    # Exactly one nudge in every mailbox (delivery through Postfix and LMTP
    # is asynchronous: wait for the queue to drain).
    count() {
        grep -l '^Subject: Please acknowledge' "$work"/mail/mail/example.test/staff*/Maildir/new/* 2>/dev/null | wc -l
    }
    for _ in $(seq 600); do [ "$(count)" -ge "$staff" ] && break; sleep 1; done
    sleep 2
    doubled=$(grep -c '^Subject: Please acknowledge' "$work"/mail/mail/example.test/staff*/Maildir/new/* 2>/dev/null | awk -F: '$2 > 1' | wc -l)
    missing=$((staff - $(count)))
    echo "delivered: $(count) of $staff mailboxes have their nudge; $missing missing, $doubled with more than one"
    [ "$missing" -eq 0 ] && [ "$doubled" -eq 0 ]
fi
