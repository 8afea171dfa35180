#!/usr/bin/env bash
# Email delivery-to-reply latency, end to end on this machine: starts
# throwaway Dovecot and Postfix servers (scripts/mail.sh), runs `policybot
# serve` on the example school with the email channel (IMAP IDLE over TLS,
# SMTP with STARTTLS), and times QUESTIONS mails from a member of staff, one
# at a time, from the SMTP server accepting each to its reply landing in the
# member of staff's inbox (default 200).
#
#   scripts/bench-email.sh [QUESTIONS] [--json]
#
# Builds the release binary first. Everything lives in a temp dir, removed at
# the end. Env: PORT (default 18600; uses PORT..PORT+3).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench-lib.sh
. "$repo/scripts/bench-lib.sh"
questions="${1:-200}"
json="${2:-}"
port="${PORT:-18600}"
imap=$port smtp=$((port + 1)) imaps=$((port + 2)) smtps=$((port + 3))
stop_servers() { "$repo/scripts/mail.sh" stop "$work/mail"; }
bench_init email
build_release

password="bench-$(date +%s)"
"$repo/scripts/mail.sh" certs "$work/mail" >/dev/null
for user in policy amira; do
    "$repo/scripts/mail.sh" adduser "$work/mail" "$user" "$password"
done
"$repo/scripts/mail.sh" start "$work/mail" "$imap" "$smtp" "$imaps" "$smtps" >/dev/null

cat > "$work/policybot.toml" <<TOML
index_dir = "$work/index"
store = "$work/policybot.sqlite3"

[email]
address = "policy@example.test"
password = "$password"
ca_file = "$work/mail/tls/ca.pem"
replies_per_hour = 100000
imap = { host = "127.0.0.1", port = $imaps, tls = "implicit" }
smtp = { host = "127.0.0.1", port = $smtp, tls = "starttls" }

[[school]]
id = "oakfield"
name = "Oakfield Primary School"
policies = "$repo/policies/oakfield"

[[staff]]
name = "Amira Shah"
school = "oakfield"
role = "Year 4 teacher"
email = ["amira@example.test"]
TOML

start_serve "policybot: email connected"

POLICYBOT_BENCH_PASSWORD="$password" "$bin" bench --email --email-imap "127.0.0.1:$imap" \
    --email-smtp "127.0.0.1:$smtp" --email-user amira@example.test --email-bot policy@example.test \
    --questions "$questions" $json
