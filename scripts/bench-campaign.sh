#!/usr/bin/env bash
# An acknowledgement campaign for a large staff, end to end on this machine:
# starts throwaway Dovecot and Postfix servers (scripts/mail.sh) with a
# mailbox per member of staff, runs `policybot serve` on the example school
# with STAFF members (default 10000) on its staff list, plans a campaign and
# follows it until every nudge is sent (`policybot bench --campaign`, with a
# progress bar), then checks every mailbox holds exactly one nudge.
#
#   scripts/bench-campaign.sh [STAFF] [--json]
#   KILL_AFTER=5000 scripts/bench-campaign.sh 10000   # kill -9 the bot after
#                                  # 5000 nudges are sent, restart it, go on
#
# Builds the release binary first. Everything lives in a temp dir, removed at
# the end. Env: PORT (default 18700; uses PORT..PORT+3), PER_MINUTE (the
# pacing, default 100000: as fast as the servers take them).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench-lib.sh
. "$repo/scripts/bench-lib.sh"
staff="${1:-10000}"
json="${2:-}"
port="${PORT:-18700}"
imap=$port smtp=$((port + 1)) imaps=$((port + 2)) smtps=$((port + 3))
stop_servers() { "$repo/scripts/mail.sh" stop "$work/mail"; }
bench_init campaign
build_release

password="bench-$(date +%s)"
users=()
for i in $(seq -f "%05g" 1 "$staff"); do users+=("staff$i"); done
"$repo/scripts/mail.sh" certs "$work/mail" >/dev/null
"$repo/scripts/mail.sh" addusers "$work/mail" "$password" policy "${users[@]}"
"$repo/scripts/mail.sh" start "$work/mail" "$imap" "$smtp" "$imaps" "$smtps" >/dev/null

{
    echo "name,school,role,matrix,email"
    for user in "${users[@]}"; do echo "$user,oakfield,Teacher,,$user@example.test"; done
} > "$work/staff.csv"

cat > "$work/policybot.toml" <<TOML
index_dir = "$work/index"
store = "$work/policybot.sqlite3"
staff_csv = "$work/staff.csv"

[acknowledgements]
nudges_per_minute = ${PER_MINUTE:-100000}

[email]
address = "policy@example.test"
password = "$password"
ca_file = "$work/mail/tls/ca.pem"
imap = { host = "127.0.0.1", port = $imaps, tls = "implicit" }
smtp = { host = "127.0.0.1", port = $smtp, tls = "starttls" }

[[school]]
id = "oakfield"
name = "Oakfield Primary School"
policies = "$repo/policies/oakfield"
TOML

start_serve "policybot: email connected"
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
    start_serve "policybot: email connected"
    wait "$bench_pid"
fi

# Exactly one nudge in every mailbox (delivery through Postfix and LMTP is
# asynchronous: wait for the queue to drain).
count() {
    grep -l '^Subject: Please acknowledge' "$work"/mail/mail/example.test/staff*/Maildir/new/* 2>/dev/null | wc -l
}
for _ in $(seq 600); do [ "$(count)" -ge "$staff" ] && break; sleep 1; done
sleep 2
doubled=$(grep -c '^Subject: Please acknowledge' "$work"/mail/mail/example.test/staff*/Maildir/new/* 2>/dev/null | awk -F: '$2 > 1' | wc -l)
missing=$((staff - $(count)))
echo "delivered: $(count) of $staff mailboxes have their nudge; $missing missing, $doubled with more than one"
[ "$missing" -eq 0 ] && [ "$doubled" -eq 0 ]
