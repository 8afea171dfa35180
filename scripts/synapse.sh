#!/usr/bin/env bash
# Throwaway Matrix Synapse homeserver for policybot's tests and benchmarks
# (loopback only, SQLite, no federation, shared-secret registration, rate
# limits raised so tests are not throttled). Used by tests/it/matrix.rs and
# .ci/run; also handy for trying the Matrix channel by hand (see README).
#
#   synapse.sh start    DIR PORT                    -> prints base URL, e.g. http://127.0.0.1:18448
#   synapse.sh register DIR PORT USER PASSWORD [admin] -> prints the register JSON (user_id, access_token, ...)
#   synapse.sh register-many DIR PORT PASSWORD USER...  -> many plain users at once
#   synapse.sh stop     DIR
#
# Env: SYNAPSE_VENV  reuse/create the venv here instead of DIR/venv (pip install takes ~30 s,
#                    so share one venv between test runs).
#      SYNAPSE_PIP_SPEC  what to pip install (default: matrix-synapse, i.e. latest).
# Progress goes to stderr so that `url=$(synapse.sh start ...)` captures only the URL.
set -euo pipefail

die() { echo "synapse.sh: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: $0 start DIR PORT | register DIR PORT USER PASSWORD [admin] | stop DIR"
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)  # absolute: the config must not depend on the caller's cwd
venv=${SYNAPSE_VENV:-$dir/venv}
py=$venv/bin/python

start() {
  local port=$1 url=http://127.0.0.1:$1
  if [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "already running (pid $(cat "$dir/pid")); run: $0 stop $dir"
  fi

  # Something else answering on PORT would make the readiness check below lie.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port already in use on 127.0.0.1"; fi

  # Install once; a venv that already imports synapse is reused as is.
  if ! "$py" -c 'import synapse' 2>/dev/null; then
    # Minimal Debian may lack python3, or ship it without ensurepip (venv creation fails).
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      apt-get update -q >&2 && apt-get install -y -q python3 python3-venv >&2
    fi
    python3 -m venv "$venv"
    echo "installing ${SYNAPSE_PIP_SPEC:-matrix-synapse} into $venv ..." >&2
    "$py" -m pip install -q --disable-pip-version-check "${SYNAPSE_PIP_SPEC:-matrix-synapse}" >&2
  fi

  # Keep the shared secret across restarts so callers that cached it stay valid.
  [[ -s $dir/shared_secret ]] || "$py" -c 'import secrets; print(secrets.token_hex(32))' > "$dir/shared_secret"
  [[ -s $dir/localhost.signing.key ]] || "$venv/bin/generate_signing_key" -o "$dir/localhost.signing.key"
  local secret; secret=$(cat "$dir/shared_secret")

  # Written fresh every start so PORT can change. No log_config: Synapse then logs to
  # stderr, which we redirect to homeserver.log (that also catches startup tracebacks).
  cat > "$dir/homeserver.yaml" <<EOF
server_name: localhost
public_baseurl: $url/
report_stats: false
signing_key_path: $dir/localhost.signing.key
media_store_path: $dir/media_store
database:
  name: sqlite3
  args: {database: $dir/homeserver.db}
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']   # loopback only
    type: http
    tls: false
    x_forwarded: false
    resources: [{names: [client, federation], compress: false}]
enable_registration: false          # users are created via the shared-secret admin API
registration_shared_secret: "$secret"
macaroon_secret_key: "$("$py" -c 'import secrets; print(secrets.token_hex(32))')"
form_secret: "$("$py" -c 'import secrets; print(secrets.token_hex(32))')"
# Never talk to matrix.org (no internet anyway, and tests must be hermetic).
trusted_key_servers: []
suppress_key_server_warning: true
# Tests hammer the server; default rate limits cause spurious 429s. Unknown keys are ignored.
rc_message: &rc {per_second: 10000, burst_count: 100000}
rc_registration: *rc
rc_registration_token_validity: *rc
rc_login: {address: *rc, account: *rc, failed_attempts: *rc}
rc_joins: {local: *rc, remote: *rc}
rc_joins_per_room: *rc
rc_invites: {per_room: *rc, per_user: *rc, per_issuer: *rc}
rc_third_party_invite: *rc
rc_3pid_validation: *rc
rc_admin_redaction: *rc
rc_room_creation: *rc
rc_media_create: *rc
rc_presence: {per_user: *rc}
rc_delayed_event_mgmt: *rc
rc_reports: *rc
# Password hashing at the cheapest cost: these are throwaway test accounts,
# and a campaign bench registers thousands.
bcrypt_rounds: 4
EOF

  echo "starting synapse on $url (log: $dir/homeserver.log) ..." >&2
  # nohup + redirected stdio: the server outlives this script and does not hold the
  # caller's stdout pipe open (otherwise e.g. subprocess.run(capture_output=True) hangs).
  nohup "$py" -m synapse.app.homeserver -c "$dir/homeserver.yaml" \
    </dev/null >>"$dir/homeserver.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$dir/pid"

  local deadline=$((SECONDS + 120))
  until "$py" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1] + "/_matrix/client/versions", timeout=2)' "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$dir/homeserver.log" >&2; rm -f "$dir/pid"; die "synapse exited during startup"
    fi
    (( SECONDS < deadline )) || { tail -n 30 "$dir/homeserver.log" >&2; die "not ready after 120s (pid $pid still running; $0 stop $dir)"; }
    sleep 1
  done
  echo "$url"
}

register() {
  [[ $# -ge 3 ]] || die "usage: $0 register DIR PORT USER PASSWORD [admin]"
  # Shared-secret registration: GET a nonce, then POST with
  # HMAC-SHA1(secret, nonce\0user\0password\0admin|notadmin).
  "$py" - "http://127.0.0.1:$1" "$2" "$3" "${4:-}" "$dir/shared_secret" <<'EOF'
import hashlib, hmac, json, sys, urllib.error, urllib.request
base, user, password, admin, secret_file = sys.argv[1:]
admin = admin == "admin"
secret = open(secret_file).read().strip().encode()
ep = base + "/_synapse/admin/v1/register"
nonce = json.load(urllib.request.urlopen(ep, timeout=10))["nonce"]
msg = "\0".join([nonce, user, password, "admin" if admin else "notadmin"]).encode()
body = {"nonce": nonce, "username": user, "password": password, "admin": admin,
        "mac": hmac.new(secret, msg, hashlib.sha1).hexdigest()}
req = urllib.request.Request(ep, json.dumps(body).encode(), {"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=30).read().decode())
except urllib.error.HTTPError as e:
    sys.exit(f"register {user} failed: HTTP {e.code} {e.read().decode()}")
EOF
}

# Many users at once (a campaign bench): one process, one nonce per user.
register_many() {
  [[ $# -ge 3 ]] || die "usage: $0 register-many DIR PORT PASSWORD USER..."
  "$py" - "http://127.0.0.1:$1" "$2" "$dir/shared_secret" "${@:3}" <<'EOF'
import hashlib, hmac, json, sys, urllib.request
base, password, secret_file, *users = sys.argv[1:]
secret = open(secret_file).read().strip().encode()
ep = base + "/_synapse/admin/v1/register"
for user in users:
    nonce = json.load(urllib.request.urlopen(ep, timeout=10))["nonce"]
    msg = "\0".join([nonce, user, password, "notadmin"]).encode()
    body = {"nonce": nonce, "username": user, "password": password, "admin": False,
            "mac": hmac.new(secret, msg, hashlib.sha1).hexdigest()}
    req = urllib.request.Request(ep, json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
EOF
}

stop() {
  [[ -f $dir/pid ]] || { echo "synapse.sh: no $dir/pid, nothing to stop" >&2; return 0; }
  local pid; pid=$(cat "$dir/pid")
  # Only signal our own server: the pid may have been reused since it was written.
  if kill -0 "$pid" 2>/dev/null && grep -q synapse.app.homeserver "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  fi
  rm -f "$dir/pid"
}

case $cmd in
  start)    [[ $# -eq 3 ]] || die "usage: $0 start DIR PORT"; start "$3" ;;
  register) shift 2; register "$@" ;;
  register-many) shift 2; register_many "$@" ;;
  stop)     stop ;;
  *)        die "unknown command: $cmd" ;;
esac
