#!/usr/bin/env bash
# Throwaway, loopback-only mail servers for tests: Dovecot (IMAP + IDLE, LMTP)
# and Postfix (SMTP), each a private instance whose config, queue, mail, sockets
# and logs all live under DIR. The system-wide /etc/postfix and /etc/dovecot
# instances are never started, read or modified.
#
#   mail.sh start   DIR IMAP_PORT SMTP_PORT [IMAPS_PORT SMTPS_PORT]
#   mail.sh adduser DIR USER PASSWORD   # creates USER@example.test (before or after start)
#   mail.sh addusers DIR PASSWORD USER… # many new users at once
#   mail.sh certs   DIR                 # CA + leaf in DIR/tls; run BEFORE start to enable TLS
#   mail.sh stop    DIR
#   MAIL_NO_IDLE=1 mail.sh start …      # a server that does not offer IDLE
#
# Flow: SMTP 127.0.0.1:SMTP_PORT -> Postfix -> LMTP (unix socket) -> Dovecot
# -> Maildir DIR/mail/example.test/USER/Maildir, owned by system user "vmail"
# (Dovecot refuses to access mail as uid 0). Only example.test is accepted; any
# other recipient is refused at RCPT time (554 Relay access denied), and nothing
# is ever sent out (default_transport=error). AUTH PLAIN/LOGIN is offered
# (Dovecot SASL) but not required from 127.0.0.1. Logs: DIR/log/{dovecot,postfix}.log
# DIR and all its parents must be traversable by the vmail/postfix/dovecot users
# (e.g. a mktemp -d under /tmp is fine, anything under /root is not).
set -euo pipefail

DOMAIN=example.test
die() { echo "mail.sh: $*" >&2; exit 1; }

install_pkgs() {
  command -v dovecot >/dev/null && command -v postfix >/dev/null &&
    [ -x /usr/lib/dovecot/lmtp ] && return
  # "No configuration": no /etc/postfix/main.cf and no prompt.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Keep the packages' own system-wide daemons from being started by the install
  # (they would grab ports 25/143/993); only add a policy if there is none.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"
  fi
  # apt-get update only if the package lists have never been fetched.
  ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    dovecot-imapd dovecot-lmtpd postfix >/dev/null
  [ -z "$policy" ] || rm -f "$policy"
}

# Directories and user tables; idempotent so adduser can run before start.
init_dir() {
  # Postfix wants its queue/data dirs outside config_directory (its ownership
  # checks walk the config dir) and creates their subdirectories itself.
  mkdir -p "$D"/{mail,log,run,postfix,postfix-queue}
  touch "$D/users" "$D/postfix/vmailbox"
  # Unprivileged daemons (vmail, dovecot, postfix) must reach files under DIR.
  chmod 755 "$D" "$D/run"; chmod 644 "$D/users"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 100); do port_free "$1" || return 0; sleep 0.1; done
  die "nothing listening on 127.0.0.1:$1 after 10s; see $D/log/"
}

write_dovecot_conf() {
  local tls="ssl = no" imaps=0 idle=""
  # MAIL_NO_IDLE=1: a server without IDLE, for clients that must poll.
  [ "${MAIL_NO_IDLE:-}" != 1 ] ||
    idle="imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE NAMESPACE CHILDREN" 
  if [ -f "$D/tls/cert.pem" ]; then
    # ssl=yes only *offers* STARTTLS; plaintext LOGIN still works on IMAP_PORT.
    tls="ssl = yes
ssl_cert = <$D/tls/cert.pem
ssl_key = <$D/tls/key.pem"
    imaps=${IMAPS_PORT:-0}
  fi
  # Fully self-contained: no !include of /etc/dovecot. Every path (base_dir,
  # state_dir, logs) is under DIR so it cannot collide with the system instance.
  cat >"$D/dovecot.conf" <<EOF
instance_name = mailtest-$(echo "$D" | md5sum | cut -c1-8)
base_dir = $D/run/dovecot
state_dir = $D/run/dovecot-state
log_path = $D/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
$tls
disable_plaintext_auth = no
$idle
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_uid = vmail
mail_gid = vmail
first_valid_uid = $(id -u vmail)
first_valid_gid = $(id -g vmail)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/users
}
# static userdb: for LMTP it still checks the passdb, so unknown users get 550.
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$D/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps
  }
}
# Postfix (running as user postfix) connects to these two sockets.
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
}

write_postfix_conf() {
  local tls="" smtps=""
  if [ -f "$D/tls/cert.pem" ]; then
    tls="smtpd_tls_cert_file = $D/tls/cert.pem
smtpd_tls_key_file = $D/tls/key.pem
smtpd_tls_security_level = may"
    [ -z "${SMTPS_PORT:-}" ] ||
      smtps="127.0.0.1:$SMTPS_PORT inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
  fi
  # meta/daemon/command directories keep their compiled-in defaults (binaries and
  # postfix-files from the package); everything with state is redirected to DIR.
  cat >"$D/postfix/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $D/postfix-queue
data_directory = $D/postfix-data
maillog_file = $D/log/postfix.log
maillog_file_prefixes = $D/log
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing is local; example.test is delivered to Dovecot over LMTP.
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = $DOMAIN
# hash: (not texthash:) so smtpd notices users added by "adduser" after start.
virtual_mailbox_maps = hash:$D/postfix/vmailbox
virtual_transport = lmtp:unix:$D/run/dovecot/lmtp
# Never relay or send anything off this host.
relayhost =
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:outbound mail disabled (test server)
relay_transport = error:outbound mail disabled (test server)
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $D/run/dovecot/auth-postfix
smtpd_banner = \$myhostname ESMTP test
$tls
EOF
  # chroot column is "n" everywhere: the private queue dir has no chroot jail files.
  cat >"$D/postfix/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
$smtps
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
}

cmd_certs() {
  mkdir -p "$D/tls"; cd "$D/tls"
  # Separate CA and leaf: rustls/webpki reject a self-signed CA used as the
  # server cert (CaUsedAsEndEntity). Clients trust DIR/tls/ca.pem.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=mail.sh test CA" -keyout ca.key -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout key.pem -out leaf.csr 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:mail.$DOMAIN" >leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile leaf.ext -out cert.pem 2>/dev/null
  rm -f leaf.csr leaf.ext ca.srl
  chmod 644 ./*.pem; chmod 600 ./*.key key.pem
  echo "$D/tls/ca.pem"
}

cmd_start() {
  install_pkgs
  getent passwd vmail >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin vmail
  init_dir
  chown vmail:vmail "$D/mail"
  for p in "$IMAP_PORT" "$SMTP_PORT" ${IMAPS_PORT:-} ${SMTPS_PORT:-}; do
    port_free "$p" || die "127.0.0.1:$p is already in use"
  done
  write_dovecot_conf; write_postfix_conf
  # Postfix re-reads a main.cf younger than ~1s until it is "stable" (costs
  # ~1.5s per command); backdate it.
  touch -d '5 seconds ago' "$D/postfix/main.cf" "$D/postfix/master.cf"
  postmap -c "$D/postfix" "hash:$D/postfix/vmailbox"
  # Both daemonize. Redirect their stdio: dovecot's master keeps stderr open, so a
  # caller capturing our output (subprocess, "| tee") would otherwise never see EOF.
  dovecot -c "$D/dovecot.conf" </dev/null >/dev/null 2>>"$D/log/dovecot.log" ||
    die "dovecot failed: $(tail -3 "$D/log/dovecot.log")"
  postfix -c "$D/postfix" start </dev/null >/dev/null 2>>"$D/log/postfix.log" ||
    die "postfix failed: $(tail -3 "$D/log/postfix.log")"
  wait_port "$IMAP_PORT"; wait_port "$SMTP_PORT"
  [ -S "$D/run/dovecot/lmtp" ] || die "dovecot LMTP socket missing; see $D/log/dovecot.log"
  echo "mail.sh: IMAP 127.0.0.1:$IMAP_PORT SMTP 127.0.0.1:$SMTP_PORT domain $DOMAIN dir $D"
}

cmd_adduser() {
  local user=${1%@"$DOMAIN"} pass=$2
  [[ $user != *[:@[:space:]]* && $pass != *[:[:space:]]* ]] || die "no ':', '@' or spaces please"
  init_dir
  # Replace any existing entry. Dovecot re-reads the passwd-file when it changes.
  sed -i "/^$user@$DOMAIN:/d" "$D/users" "$D/postfix/vmailbox"
  echo "$user@$DOMAIN:{PLAIN}$pass::::::" >>"$D/users"
  echo "$user@$DOMAIN OK" >>"$D/postfix/vmailbox"
  # Before the first start there is no main.cf yet; start runs postmap itself.
  [ ! -f "$D/postfix/main.cf" ] || postmap -c "$D/postfix" "hash:$D/postfix/vmailbox"
}

# Many new users at once (a campaign bench): appended without looking for
# existing entries, one postmap at the end.
cmd_addusers() {
  local pass=$1; shift
  init_dir
  for user in "$@"; do
    echo "$user@$DOMAIN:{PLAIN}$pass::::::"
  done >>"$D/users"
  for user in "$@"; do
    echo "$user@$DOMAIN OK"
  done >>"$D/postfix/vmailbox"
  [ ! -f "$D/postfix/main.cf" ] || postmap -c "$D/postfix" "hash:$D/postfix/vmailbox"
}

cmd_stop() {
  local pids=""
  [ -f "$D/run/dovecot/master.pid" ] && pids+=" $(cat "$D/run/dovecot/master.pid")"
  [ -f "$D/postfix-queue/pid/master.pid" ] && pids+=" $(tr -d ' ' <"$D/postfix-queue/pid/master.pid")"
  # postfix stop returns at once, dovecot stop blocks ~2s: run them in this
  # order so both masters shut down in parallel, then wait until they are gone
  # so the ports are free for an immediate restart.
  [ ! -f "$D/postfix/main.cf" ] || postfix -c "$D/postfix" stop 2>>"$D/log/postfix.log" || true
  [ ! -f "$D/dovecot.conf" ] || dovecot -c "$D/dovecot.conf" stop 2>/dev/null || true
  for pid in $pids; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  # Dovecot's imap processes outlive their master for a while, half-working
  # (they still see new mail but may never answer): end them, as a real
  # server restart would, so clients see their connections drop.
  pkill -KILL -f "mailtest-$(echo "$D" | md5sum | cut -c1-8)/" 2>/dev/null || true
}

[ $# -ge 2 ] || die "usage: $0 start|adduser|certs|stop DIR ..."
cmd=$1; mkdir -p "$2"; D=$(cd "$2" && pwd); shift 2
case $cmd in
  start)   [ $# -ge 2 ] || die "usage: $0 start DIR IMAP_PORT SMTP_PORT [IMAPS_PORT SMTPS_PORT]"
           IMAP_PORT=$1 SMTP_PORT=$2 IMAPS_PORT=${3:-} SMTPS_PORT=${4:-}; cmd_start ;;
  adduser) [ $# -eq 2 ] || die "usage: $0 adduser DIR USER PASSWORD"; cmd_adduser "$@" ;;
  addusers) [ $# -ge 2 ] || die "usage: $0 addusers DIR PASSWORD USER..."; cmd_addusers "$@" ;;
  certs)   cmd_certs ;;
  stop)    cmd_stop ;;
  *)       die "unknown command $cmd" ;;
esac
