#!/usr/bin/env bash
# mailstack.sh - self-contained, per-directory Dovecot (IMAP+LMTP) + Postfix (SMTP) test stack.
#
#   mailstack.sh start   DIR                      start (or create+start) the stack living in DIR
#   mailstack.sh stop    DIR                      stop it: the daemons' whole process groups,
#                                                 so open IMAP connections close at once
#   mailstack.sh adduser DIR user@domain password [user2 pass2 ...]
#                                                 create/update users (works running or stopped)
#   mailstack.sh deluser DIR user@domain          remove a user from auth + SMTP maps (mail is kept)
#   mailstack.sh status  DIR                      show pids / ports; exit 0 only if everything is up
#   mailstack.sh env     DIR [--shell]            print the resolved settings as KEY=VALUE lines
#                                                 (value = rest of the line, unquoted; --shell: quoted
#                                                 for eval); includes HOST, DOVECOT_CONF, POSTFIX_CONF,
#                                                 LOG_DIR, TLS_CERT
#   mailstack.sh imap-stop    DIR                 stop Dovecot only (Postfix queues mail meanwhile)
#   mailstack.sh imap-restart DIR                 stop Dovecot, then start it again (same ports)
#   mailstack.sh install                          only install what is missing (packages, mail
#                                                 user), e.g. before tests start stacks in parallel
#
# Everything (configs, sockets, queue, mail, logs, TLS cert, users) lives in DIR; nothing in /etc
# is read or written except: packages installed with apt-get when missing (as root on Debian;
# otherwise the exact command is printed), and a system user ($MAIL_USER, default "mailstack")
# that owns the mail files.  Servers bind 127.0.0.1 only.  Must run as root (Postfix' master and
# Dovecot drop privileges themselves).  DIR's path must be at most 72 chars (unix socket paths);
# its parents must be searchable by other users: a 0700 parent inside $TMPDIR (mktemp -d) gets o+x.
# IMAP: plaintext LOGIN allowed, SPECIAL-USE folders Drafts Sent Trash Junk Archive, NOTIFY
# (mailbox_list_index), IDLE.  SMTP: loopback clients may relay without AUTH; SUBMISSION needs AUTH.
#
# Settings (environment; resolved values are saved in DIR/mailstack.env and reused by later calls
# on the same DIR unless overridden again):
#   PORT_BASE=11000        IMAP=+0 IMAPS=+1 SMTP=+2 SUBMISSION=+3 SMTPS=+4 LMTP=+5 SIEVE=+6
#                          auto: start picks a random base whose seven ports are free (a DIR that
#                          already has saved settings keeps its ports)
#   IMAP_PORT IMAPS_PORT SMTP_PORT SUBMISSION_PORT SMTPS_PORT LMTP_PORT SIEVE_PORT (override one)
#   MAIL_FORMAT=sdbox      sdbox | maildir | mdbox   (sdbox: STATUS/SELECT stay fast on big folders;
#                          maildir: one plain file per message, handy for grep but slower)
#   MAIL_FSYNC=optimized   optimized | always | never   (Dovecot mail_fsync)
#   MAX_USERIP_CONN=1000   Dovecot mail_max_userip_connections (Dovecot default is 10!)
#   IMAP_PROCESS_LIMIT=1024  max concurrent imap processes (= connections, Dovecot default 100)
#   AUTH_FAILURE_DELAY=0   Dovecot auth_failure_delay (Dovecot default: 2 secs per failed login);
#                          0 also turns off Dovecot's per-IP auth penalty (2, 4, 8, 15 s more per
#                          further failure; all tests connect from 127.0.0.1)
#   IMAP_CLIENT_LIMIT=1    connections per imap process (Dovecot default 1 = one process each)
#   HIBERNATE_TIMEOUT=0    imap_hibernate_timeout (e.g. 5s): move IDLEing clients to imap-hibernate
#   SIEVE_EXTENSIONS=      Pigeonhole sieve_extensions (e.g. "-vacation": a server without vacation)
#   EXTERNAL_TRANSPORT="discard:external mail discarded by mailstack"   what Postfix does with
#                          mail for domains that have no users here (e.g. "error:5.7.1 no relay",
#                          "hold", "smtp:[127.0.0.1]:2525" for a capture sink)
#   MAIL_HOSTNAME=mailstack.test   PASS_SCHEME=SSHA512 (any doveadm pw scheme, or PLAIN)
#   MAIL_USER=mailstack    system user owning the mail store (created if missing)
#   DEBUG=0                1 = Dovecot mail_debug/auth_debug + Postfix -v for smtpd
# Per call only (not saved):
#   MAILSTACK_OWNER_PID=N  start: a watchdog stops the stack once process N has exited (a test
#                          harness killed before it could clean up leaves no daemons behind)
#   MAILSTACK_TIMING=1     timestamps of the start phases     MAILSTACK_TRACE=1   set -x
#   MAILSTACK_FORCE_INSTALL=1   run apt-get install for all packages even if they are present
#   MAILSTACK_INOTIFY_INSTANCES=8192   start: raise fs.inotify.max_user_instances to at least this
#                          (as root; machine-wide; one per IDLE/NOTIFY connection); 0 = leave it
#
set -euo pipefail
[ "${MAILSTACK_TRACE:-0}" = 1 ] && { PS4='+ $(date +%S.%3N) '; set -x; }
umask 022
# nothing here reads stdin: CI runs without one, and apt-get or a daemon must never wait on it
exec </dev/null

PROG=$(basename "$0")
SELF=$(realpath -- "$0")
# machine-wide locks shared by all stacks: package installation and choosing free ports
LOCK_DIR=/run/lock
[ -d "$LOCK_DIR" ] && [ -w "$LOCK_DIR" ] || LOCK_DIR=/tmp
DOVECOT=/usr/sbin/dovecot
DOVEADM=/usr/bin/doveadm
POSTFIX=/usr/sbin/postfix
POSTMAP=/usr/sbin/postmap
PF_DAEMON_DIR=/usr/lib/postfix/sbin

PORT_VARS="IMAP_PORT IMAPS_PORT SMTP_PORT SUBMISSION_PORT SMTPS_PORT LMTP_PORT SIEVE_PORT"
declare -A PORT_OFF=([IMAP_PORT]=0 [IMAPS_PORT]=1 [SMTP_PORT]=2 [SUBMISSION_PORT]=3 [SMTPS_PORT]=4 [LMTP_PORT]=5 [SIEVE_PORT]=6)
OTHER_VARS="AUTH_FAILURE_DELAY MAIL_FORMAT MAIL_FSYNC MAX_USERIP_CONN IMAP_PROCESS_LIMIT IMAP_CLIENT_LIMIT HIBERNATE_TIMEOUT SIEVE_EXTENSIONS EXTERNAL_TRANSPORT MAIL_HOSTNAME PASS_SCHEME MAIL_USER DEBUG"

die()  { echo "$PROG: error: $*" >&2; exit 1; }
log()  { echo "$PROG: $*" >&2; }
T0_MS=$(date +%s%3N)
tlog() { [ "${MAILSTACK_TIMING:-0}" = 1 ] && echo "$PROG: +$(( $(date +%s%3N) - T0_MS ))ms $*" >&2 || true; }
now_ms() { date +%s%3N; }

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# --------------------------------------------------------------------------- install
PACKAGES="dovecot-core dovecot-imapd dovecot-lmtpd dovecot-managesieved dovecot-sieve postfix openssl util-linux"

need_packages() {
  [ -x $DOVECOT ] && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/lmtp ] \
    && [ -x /usr/lib/dovecot/imap-login ] && [ -x $POSTFIX ] && [ -x $POSTMAP ] \
    && command -v openssl >/dev/null && command -v flock >/dev/null && return 1
  return 0
}

missing_packages() {
  local p
  for p in $PACKAGES; do
    if [ "${MAILSTACK_FORCE_INSTALL:-0}" = 1 ] \
       || ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then echo "$p"; fi
  done
}

install_packages() {
  [ "${MAILSTACK_FORCE_INSTALL:-0}" = 1 ] || need_packages || return 0
  local pkgs; pkgs=$(missing_packages | xargs)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "packages missing; install them (as root, Debian/Ubuntu) with:
  apt-get update && apt-get install -y --no-install-recommends ${pkgs:-$PACKAGES}"
  fi
  # one installer at a time: parallel starts (e.g. tests) would otherwise race on debconf and on
  # the temporary policy-rc.d below
  exec 7>>"$LOCK_DIR/mailstack-install.lock"; flock 7
  if [ "${MAILSTACK_FORCE_INSTALL:-0}" != 1 ] && ! need_packages; then exec 7>&-; return 0; fi
  pkgs=$(missing_packages | xargs)
  log "installing packages ($pkgs) ..."
  export DEBIAN_FRONTEND=noninteractive
  local had_dovecot=0 had_postfix=0
  dpkg-query -W -f='${Status}' dovecot-core 2>/dev/null | grep -q 'ok installed' && had_dovecot=1
  dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed' && had_postfix=1
  # Pre-seed Postfix so its postinst never prompts and never writes a usable /etc/postfix/main.cf
  # (the system instance therefore stays unconfigured and cannot start by accident).
  printf '%s\n' \
    "postfix postfix/main_mailer_type select No configuration" \
    "postfix postfix/mailname string ${MAIL_HOSTNAME:-mailstack.test}" | debconf-set-selections
  # Keep the packages' own system services (dovecot on *:143/993, postfix on *:25) from being
  # started by the maintainer scripts: a temporary policy-rc.d that denies all starts.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# temporary, created by mailstack.sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  # only what is missing, and --no-upgrade: never upgrade packages (e.g. openssl) as a side effect
  local rc=0
  local apt="apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends --no-upgrade"
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  $apt $pkgs >&2 || rc=$?
  if [ $rc != 0 ]; then
    # a fresh machine has no package lists yet
    log "apt-get install failed (rc=$rc), running apt-get update and retrying"
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2 && rc=0 || rc=$?
    # shellcheck disable=SC2086
    [ $rc = 0 ] && { $apt $pkgs >&2 || rc=$?; }
  fi
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || die "apt-get install failed"
  # on a systemd host, do not let the freshly installed system units come up at next boot
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    [ $had_dovecot = 0 ] && systemctl disable --now dovecot.service >/dev/null 2>&1 || true
    [ $had_postfix = 0 ] && systemctl disable --now postfix.service >/dev/null 2>&1 || true
  fi
  need_packages && die "packages still missing after install"
  exec 7>&-
  return 0
}

ensure_mail_user() {
  if ! getent passwd "$MAIL_USER" >/dev/null; then
    [ "$(id -u)" = 0 ] || die "system user $MAIL_USER missing and not root"
    # same lock as the installer: two useradd at once fail on /etc/passwd's lock
    exec 7>>"$LOCK_DIR/mailstack-install.lock"; flock 7
    getent passwd "$MAIL_USER" >/dev/null \
      || useradd --system --user-group --no-create-home --home-dir /nonexistent \
                 --shell /usr/sbin/nologin "$MAIL_USER" \
      || die "cannot create user $MAIL_USER"
    exec 7>&-
  fi
  MAIL_UID=$(id -u "$MAIL_USER"); MAIL_GID=$(id -g "$MAIL_USER")
  MAIL_GROUP=$(id -gn "$MAIL_USER")
}

# --------------------------------------------------------------------------- settings
set_dir() {
  [ -n "${1:-}" ] || usage
  case "$1" in *[[:space:]]*|*:*|*'$'*|*'%'*|*'"'*|*"'"*|*'#'*) die "DIR must not contain whitespace or : \$ % \" ' #";; esac
  DIR=$(realpath -m -- "$1")
  # unix socket paths are limited to 107 bytes; the longest one is $DIR/run/login/imap-hibernate-ish
  [ ${#DIR} -le 72 ] || die "DIR path too long (${#DIR} > 72 chars; unix socket path limit)"
  local a=$DIR tmp
  tmp=$(realpath -m -- "${TMPDIR:-/tmp}")
  while a=$(dirname "$a"); [ "$a" != / ]; do
    if [ -d "$a" ] && [ "$(( 0$(stat -c %a "$a") & 1 ))" = 0 ]; then
      # mktemp -d makes 0700 directories; search-only access (no listing) is all the daemons need
      case "$a" in
        "$tmp"/?*) chmod o+x "$a" 2>/dev/null && continue;;
      esac
      die "$a is not world-searchable (o+x); Postfix/Dovecot users could not reach $DIR"
    fi
  done
  CONF_PF=$DIR/postfix
  SPOOL_PF=$DIR/postfix-spool
  DATA_PF=$DIR/postfix-data
  CONF_DC=$DIR/dovecot/dovecot.conf
  RUN=$DIR/run
  ENVFILE=$DIR/mailstack.env
}

# PORT_BASE=auto only asks `start` to pick free ports for a DIR that has none saved yet
resolve_settings() {   # explicit env  >  DIR/mailstack.env  >  defaults
  local -A explicit=()
  local v want_auto=0
  for v in PORT_BASE $PORT_VARS $OTHER_VARS; do
    if [ -n "${!v+x}" ] && [ -n "${!v}" ]; then explicit[$v]=${!v}; fi
  done
  if [ "${explicit[PORT_BASE]:-}" = auto ]; then unset 'explicit[PORT_BASE]'; want_auto=1; fi
  PORT_BASE=""
  # shellcheck source=/dev/null  # written by save_settings
  if [ -f "$ENVFILE" ]; then . "$ENVFILE"; fi
  for v in "${!explicit[@]}"; do printf -v "$v" '%s' "${explicit[$v]}"; done
  [ $want_auto = 1 ] && [ -z "$PORT_BASE" ] && PORT_BASE=auto
  PORT_BASE=${PORT_BASE:-11000}
  if [ "$PORT_BASE" != auto ]; then
    [[ $PORT_BASE =~ ^[0-9]+$ ]] || die "PORT_BASE must be a number or auto (got '$PORT_BASE')"
    for v in $PORT_VARS; do
      [ -n "${explicit[$v]+x}" ] && continue
      if [ -n "${explicit[PORT_BASE]+x}" ] || [ -z "${!v:-}" ]; then
        printf -v "$v" '%s' $((PORT_BASE + PORT_OFF[$v]))
      fi
    done
    check_ports
  fi
  AUTH_FAILURE_DELAY=${AUTH_FAILURE_DELAY:-0}
  MAIL_FORMAT=${MAIL_FORMAT:-sdbox}
  MAIL_FSYNC=${MAIL_FSYNC:-optimized}
  MAX_USERIP_CONN=${MAX_USERIP_CONN:-1000}
  IMAP_PROCESS_LIMIT=${IMAP_PROCESS_LIMIT:-1024}
  IMAP_CLIENT_LIMIT=${IMAP_CLIENT_LIMIT:-1}
  HIBERNATE_TIMEOUT=${HIBERNATE_TIMEOUT:-0}
  SIEVE_EXTENSIONS=${SIEVE_EXTENSIONS:-}
  EXTERNAL_TRANSPORT=${EXTERNAL_TRANSPORT:-discard:external mail discarded by mailstack}
  MAIL_HOSTNAME=${MAIL_HOSTNAME:-mailstack.test}
  PASS_SCHEME=${PASS_SCHEME:-SSHA512}
  MAIL_USER=${MAIL_USER:-mailstack}
  DEBUG=${DEBUG:-0}
  case $MAIL_FORMAT in maildir) MAIL_LOCATION="maildir:~/Maildir";;
                       sdbox)   MAIL_LOCATION="sdbox:~/sdbox";;
                       mdbox)   MAIL_LOCATION="mdbox:~/mdbox";;
                       *) die "MAIL_FORMAT must be maildir, sdbox or mdbox";; esac
}

check_ports() {
  local v
  for v in $PORT_VARS; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 65535 ] || die "$v=${!v} is not a port"
  done
}

# PORT_BASE=auto: a random base in 20000-60000 whose seven ports nobody listens on.  Called with the
# ports lock held, which `start` keeps until its daemons listen, so parallel starts never collide.
pick_free_ports() {
  local lo=20000 hi=60000 eph_lo base v try free
  # stay below the kernel's ephemeral range when it leaves room: an outgoing connection may hold
  # any port in it, and a listener cannot bind a port that a connection uses
  read -r eph_lo _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=$hi
  if [ "$eph_lo" -gt $((lo + 1000)) ] && [ "$eph_lo" -lt $hi ]; then hi=$eph_lo; fi
  for try in $(seq 1 100); do
    base=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo - 7) ))
    free=1
    for v in $PORT_VARS; do
      port_in_use $((base + PORT_OFF[$v])) && { free=0; break; }
    done
    if [ $free = 1 ]; then
      PORT_BASE=$base
      for v in $PORT_VARS; do printf -v "$v" '%s' $((base + PORT_OFF[$v])); done
      return 0
    fi
  done
  die "no free range of 7 ports found in $lo-$hi after $try tries"
}

save_settings() {
  local v
  { echo "# written by mailstack.sh start; sourced by later calls on this DIR"
    for v in DIR PORT_BASE $PORT_VARS $OTHER_VARS; do printf '%s=%q\n' "$v" "${!v}"; done
  } > "$ENVFILE.tmp" && mv "$ENVFILE.tmp" "$ENVFILE"
}

# --------------------------------------------------------------------------- config rendering
# install $1 (a freshly written temp file) as $2 only if the content changed, and back-date its
# mtime: Postfix re-reads main.cf/master.cf in a 300 ms loop until the file is >1 s old
# ("let the file cool down"), which otherwise adds 1-2 s to every start after a rewrite.
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then rm -f "$1"; return 0; fi
  touch -d "@$(( $(date +%s) - 10 ))" "$1"
  mv "$1" "$2"
}

make_dirs() {
  mkdir -p "$DIR" "$DIR/dovecot" "$RUN" "$DIR/state" "$DIR/log" "$DIR/tls" "$CONF_PF" "$SPOOL_PF" "$DATA_PF"
  chmod 755 "$DIR" "$DIR/dovecot" "$RUN" "$DIR/log" "$CONF_PF" "$SPOOL_PF"
  chmod 750 "$DIR/state"
  mkdir -p "$DIR/mail"; chown "$MAIL_USER:$MAIL_GROUP" "$DIR/mail"; chmod 750 "$DIR/mail"
  chown postfix:root "$DATA_PF"; chmod 700 "$DATA_PF"
  [ -f "$DIR/users" ] || : > "$DIR/users"
  chown root:dovecot "$DIR/users"; chmod 640 "$DIR/users"
  touch "$DIR/log/dovecot.log" "$DIR/log/postfix.log"
  sync_userfiles
}

make_cert() {
  [ -s "$DIR/tls/cert.pem" ] && [ -s "$DIR/tls/key.pem" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,DNS:$MAIL_HOSTNAME,IP:127.0.0.1" \
    -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" 2>/dev/null || die "openssl failed"
  chmod 600 "$DIR/tls/key.pem"; chmod 644 "$DIR/tls/cert.pem"
}

render_dovecot() {
  local name dbg=no penalty_mode=0600
  name=mailstack-$(printf '%s' "$DIR" | md5sum | cut -c1-8)
  [ "$DEBUG" = 1 ] && dbg=yes
  [ "$AUTH_FAILURE_DELAY" = 0 ] && penalty_mode=0
  cat > "$CONF_DC.tmp" <<EOF
# generated by mailstack.sh -- edits are overwritten on every start
instance_name = $name
base_dir = $RUN
state_dir = $DIR/state
listen = 127.0.0.1
protocols = imap lmtp sieve
hostname = $MAIL_HOSTNAME
postmaster_address = postmaster@$MAIL_HOSTNAME
log_path = $DIR/log/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
verbose_proctitle = yes
mail_debug = $dbg
auth_debug = $dbg
auth_verbose = $dbg

ssl = yes
ssl_cert = <$DIR/tls/cert.pem
ssl_key = <$DIR/tls/key.pem
ssl_min_protocol = TLSv1.2

# plaintext LOGIN/AUTHENTICATE PLAIN allowed without TLS (loopback-only test server)
disable_plaintext_auth = no
auth_mechanisms = plain login
# Dovecot default is 2 secs per failed login (also for Postfix SASL): makes bad-password tests slow
auth_failure_delay = $AUTH_FAILURE_DELAY
passdb {
  driver = passwd-file
  args = scheme=$PASS_SCHEME username_format=%u $DIR/users.d/%u
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users.d/%u
  default_fields = uid=$MAIL_UID gid=$MAIL_GID home=$DIR/mail/%d/%n
}
first_valid_uid = $MAIL_UID
last_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
last_valid_gid = $MAIL_GID

mail_location = $MAIL_LOCATION
mail_fsync = $MAIL_FSYNC
mail_attribute_dict = file:%h/dovecot-attributes
# Dovecot advertises IMAP NOTIFY (RFC 5465) only with the mailbox list index
mailbox_list_index = yes
imap_metadata = yes
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no

namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}

imap_hibernate_timeout = $HIBERNATE_TIMEOUT
protocol imap {
  mail_plugins = \$mail_plugins imap_zlib
  mail_max_userip_connections = $MAX_USERIP_CONN
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
  # high-performance mode: long-lived login processes, one pre-forked
  service_count = 0
  process_min_avail = 1
}
service imap {
  process_limit = $IMAP_PROCESS_LIMIT
  # >1 lets one imap process serve several connections (all users share one UID here):
  # less memory and fewer inotify instances (fs.inotify.max_user_instances, default 128 per UID)
  client_limit = $IMAP_CLIENT_LIMIT
  service_count = $([ "$IMAP_CLIENT_LIMIT" -gt 1 ] && echo 0 || echo 1)
  unix_listener imap-master {
    user = \$default_internal_user
  }
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    user = $MAIL_USER
    group = $MAIL_GROUP
  }
}
# ManageSieve (RFC 5804) for out-of-office scripts, run by LMTP delivery (Pigeonhole)
service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = $SIEVE_PORT
  }
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  $([ -n "$SIEVE_EXTENSIONS" ] && echo "sieve_extensions = $SIEVE_EXTENSIONS")
}
# where Sieve's vacation replies and redirects go out: this stack's Postfix
submission_host = 127.0.0.1:$SMTP_PORT
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
service anvil {
  # the auth process applies the per-IP penalty only if this socket exists (mode 0: not created)
  unix_listener anvil-auth-penalty {
    mode = $penalty_mode
  }
}
EOF
  install_file "$CONF_DC.tmp" "$CONF_DC"
}

render_postfix() {
  local v=""
  [ "$DEBUG" = 1 ] && v=" -v"
  cat > "$CONF_PF/main.cf.tmp" <<EOF
# generated by mailstack.sh -- edits are overwritten on every start
compatibility_level = 3.6
queue_directory = $SPOOL_PF
data_directory = $DATA_PF
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = $DIR/log
myhostname = $MAIL_HOSTNAME
mydomain = $MAIL_HOSTNAME
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# no local(8) delivery at all: every user is a virtual mailbox delivered to Dovecot via LMTP
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled
alias_maps =
alias_database =
virtual_alias_maps =
virtual_mailbox_domains = hash:$CONF_PF/vdomains
virtual_mailbox_maps = hash:$CONF_PF/vmailbox
virtual_transport = lmtp:unix:$RUN/lmtp
relay_domains =
default_transport = $EXTERNAL_TRANSPORT
relay_transport = $EXTERNAL_TRANSPORT
recipient_delimiter = +
# SMTP server: loopback clients may relay, others must AUTH (Dovecot SASL); AUTH allowed without TLS
smtpd_banner = \$myhostname ESMTP mailstack
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $RUN/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
smtpd_tls_security_level = may
smtpd_tls_cert_file = $DIR/tls/cert.pem
smtpd_tls_key_file = $DIR/tls/key.pem
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_peername_lookup = no
smtputf8_enable = no
message_size_limit = 52428800
mailbox_size_limit = 0
biff = no
append_dot_mydomain = no
readme_directory = no
smtp_host_lookup = native
lmtp_host_lookup = native
delay_warning_time = 0h
# retry quickly (tests): e.g. mail that arrived while Dovecot was down
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 30s
EOF
  install_file "$CONF_PF/main.cf.tmp" "$CONF_PF/main.cf"
  # chroot column is "n" everywhere: nothing has to be copied into the spool
  cat > "$CONF_PF/master.cf.tmp" <<EOF
# generated by mailstack.sh -- edits are overwritten on every start
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$SMTP_PORT inet n - n - - smtpd$v
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd$v
  -o syslog_name=postfix/submission
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd$v
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  install_file "$CONF_PF/master.cf.tmp" "$CONF_PF/master.cf"
  rebuild_postfix_maps
}

# vdomains / vmailbox are derived from DIR/users (the single source of truth)
rebuild_postfix_maps() {
  [ -d "$CONF_PF" ] || return 0
  awk -F: 'NF && $1 !~ /^#/ { print $1 " OK" }' "$DIR/users" > "$CONF_PF/vmailbox.tmp"
  awk -F: 'NF && $1 !~ /^#/ && $1 ~ /@/ { sub(/^[^@]*@/, "", $1); print tolower($1) " OK" }' "$DIR/users" \
    | sort -u > "$CONF_PF/vdomains.tmp"
  install_file "$CONF_PF/vmailbox.tmp" "$CONF_PF/vmailbox"; install_file "$CONF_PF/vdomains.tmp" "$CONF_PF/vdomains"
  $POSTMAP -c "$CONF_PF" "hash:$CONF_PF/vmailbox" "hash:$CONF_PF/vdomains" 2>/dev/null \
    || $POSTMAP -c "$CONF_PF" "hash:$CONF_PF/vmailbox" "hash:$CONF_PF/vdomains"
}

render_all() {
  make_dirs; tlog dirs
  make_cert; tlog cert
  render_dovecot; tlog dovecot-conf
  render_postfix
}

# --------------------------------------------------------------------------- process helpers
dovecot_pid() {
  local p
  [ -f "$RUN/master.pid" ] || return 1
  p=$(cat "$RUN/master.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(readlink /proc/$p/exe 2>/dev/null)" = "$DOVECOT" ] || return 1
  echo "$p"
}
postfix_pid() {
  local p
  [ -f "$SPOOL_PF/pid/master.pid" ] || return 1
  p=$(awk '{print $1; exit}' "$SPOOL_PF/pid/master.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(readlink /proc/$p/exe 2>/dev/null)" = "$PF_DAEMON_DIR/master" ] || return 1
  echo "$p"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait until a TCP banner starting with $2 is received on port $1 (timeout $3 seconds)
wait_banner() {
  local port=$1 want=$2 deadline=$(( $(now_ms) + ${3:-15} * 1000 )) line
  while [ "$(now_ms)" -lt $deadline ]; do
    # subshell: a failed "exec N<>/dev/tcp/..." would terminate the main (non-interactive) shell
    line=$( (exec 7<>"/dev/tcp/127.0.0.1/$port" && IFS= read -r -t 2 l <&7 && printf '%s' "$l") 2>/dev/null ) || true
    case "$line" in "$want"*) return 0;; esac
    sleep 0.02
  done
  return 1
}

# a daemon's master is re-parented to init, which may reap it only seconds later: a zombie is gone
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# true while a live (non-zombie) process is in process group $1 (read from /proc: no fork per pid)
group_alive() {
  local f line state pgrp
  for f in /proc/[0-9]*/stat; do
    { IFS= read -r line < "$f"; } 2>/dev/null || continue
    read -r state _ pgrp _ <<< "${line##*) }"
    [ "$pgrp" = "$1" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

# Both masters setsid() and lead a process group with all their children.  SIGTERM goes to the
# whole group: Dovecot's imap processes otherwise keep serving their connections for ~10 s after
# the master is gone (clients would not notice a stop, and stray processes would outlive it).
term_group() {  # master pid
  kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
}

wait_group_gone() {  # master pid, name, timeout_s; SIGKILL for what is left after the timeout
  local deadline=$(( $(now_ms) + $3 * 1000 ))
  while alive "$1" || group_alive "$1"; do
    if [ "$(now_ms)" -ge $deadline ]; then
      log "$2 (process group $1) did not exit; SIGKILL"
      kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
      return 1
    fi
    sleep 0.02
  done
}

# --------------------------------------------------------------------------- commands
cmd_start() {
  set_dir "${1:-}"
  local t0; t0=$(now_ms)
  resolve_settings
  tlog resolved
  install_packages
  tlog install-checked
  [ "$(id -u)" = 0 ] || die "must run as root (Postfix master and Dovecot drop privileges themselves)"
  ensure_mail_user
  mkdir -p "$DIR"; exec 9>>"$DIR/.lock"; flock 9
  if dovecot_pid >/dev/null && postfix_pid >/dev/null; then
    log "already running in $DIR (IMAP $IMAP_PORT, SMTP $SMTP_PORT)"; start_watchdog; return 0
  fi
  if [ "$PORT_BASE" = auto ]; then
    # released once both daemons listen (fd 8 closes when this script exits at the latest)
    exec 8>>"$LOCK_DIR/mailstack-ports.lock"; flock 8
    pick_free_ports
  fi
  dovecot_pid >/dev/null || for v in IMAP_PORT IMAPS_PORT LMTP_PORT SIEVE_PORT; do
    port_in_use "${!v}" && die "$v ${!v} already in use on 127.0.0.1"
  done
  postfix_pid >/dev/null || for v in SMTP_PORT SUBMISSION_PORT SMTPS_PORT; do
    port_in_use "${!v}" && die "$v ${!v} already in use on 127.0.0.1"
  done
  save_settings
  tlog port-checks-done
  render_all
  tlog configs-rendered
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # Dovecot first: Postfix delivers into it.  The daemons must inherit neither the caller's
  # stdout/stderr (a harness reading them would hang) nor the lock fds 7-9 (they would hold the locks).
  if ! dovecot_pid >/dev/null; then
    rm -f "$RUN/master.pid"
    # left by an earlier run with the penalty on, it would make auth log connect errors
    [ "$AUTH_FAILURE_DELAY" = 0 ] && rm -f "$RUN/anvil-auth-penalty"
    $DOVECOT -c "$CONF_DC" </dev/null >>"$DIR/log/dovecot-start.log" 2>&1 7>&- 8>&- 9>&- \
      || { tail -n 20 "$DIR/log/dovecot-start.log" "$DIR/log/dovecot.log" >&2; die "dovecot failed to start"; }
  fi
  tlog dovecot-started
  if ! postfix_pid >/dev/null; then
    # first start runs Postfix' own integrity checks (creates the queue tree); later starts skip them
    [ -d "$SPOOL_PF/pid" ] && [ -d "$SPOOL_PF/maildrop" ] && touch "$SPOOL_PF/quick-start"
    $POSTFIX -c "$CONF_PF" start </dev/null >>"$DIR/log/postfix-start.log" 2>&1 7>&- 8>&- 9>&- \
      || { tail -n 20 "$DIR/log/postfix-start.log" "$DIR/log/postfix.log" >&2; die "postfix failed to start"; }
  fi
  tlog postfix-started
  wait_banner "$IMAP_PORT" "* OK" 15 || die "IMAP port $IMAP_PORT not answering (see $DIR/log/dovecot.log)"
  tlog imap-ready
  wait_banner "$SMTP_PORT" "220" 15 || die "SMTP port $SMTP_PORT not answering (see $DIR/log/postfix.log)"
  exec 8>&-
  [ -S "$RUN/lmtp" ] || die "LMTP socket missing"
  start_watchdog
  raise_inotify_instances
  log "started in $DIR in $(( $(now_ms) - t0 )) ms: IMAP 127.0.0.1:$IMAP_PORT IMAPS :$IMAPS_PORT SMTP :$SMTP_PORT SUBMISSION :$SUBMISSION_PORT SMTPS :$SMTPS_PORT LMTP :$LMTP_PORT SIEVE :$SIEVE_PORT"
}

cmd_stop() {
  set_dir "${1:-}"
  [ -d "$DIR" ] || die "no such stack: $DIR"
  local pf="" dc="" rc=0 t0; t0=$(now_ms)
  stop_watchdog
  # signal both first, then wait for both (Dovecot's master needs ~1 s to reap its children)
  if pf=$(postfix_pid); then term_group "$pf"; fi
  if dc=$(dovecot_pid); then term_group "$dc"; fi
  if [ -n "$pf" ]; then wait_group_gone "$pf" postfix 10 || rc=1; fi
  if [ -n "$dc" ]; then wait_group_gone "$dc" dovecot 10 || rc=1; fi
  log "stopped $DIR in $(( $(now_ms) - t0 )) ms"
  return $rc
}

cmd_imap_stop() {
  set_dir "${1:-}"
  [ -f "$ENVFILE" ] || die "no stack in $DIR"
  resolve_settings
  exec 9>>"$DIR/.lock"; flock 9
  local dc
  if dc=$(dovecot_pid); then
    term_group "$dc"
    wait_group_gone "$dc" dovecot 10 || true
    log "dovecot stopped in $DIR"
  else
    log "dovecot was not running in $DIR"
  fi
  exec 9>&-
}

# --------------------------------------------------------------------------- owner watchdog
# With MAILSTACK_OWNER_PID set, `start` leaves a watchdog that stops the stack when that process
# is gone, so a test process killed before its cleanup ran (SIGKILL, Ctrl-C, abort) leaves no
# daemons behind.  It runs in its own session (setsid) so the owner's Ctrl-C does not reach it.
# Dovecot takes one inotify instance per IDLE/NOTIFY connection (one imap process each with
# IMAP_CLIENT_LIMIT=1); beyond fs.inotify.max_user_instances (kernel default 128 per UID, shared
# by all stacks of $MAIL_USER) it silently falls back to polling every 30 s, which push tests
# would see as lost notifications.  As root the limit is raised (machine-wide) and said so.
raise_inotify_instances() {
  local file=/proc/sys/fs/inotify/max_user_instances want=${MAILSTACK_INOTIFY_INSTANCES:-8192} ni
  ni=$(cat "$file" 2>/dev/null || echo 0)
  [ "$want" -gt 0 ] && [ "$ni" -lt "$want" ] || return 0
  if [ "$(id -u)" = 0 ] && echo "$want" >"$file" 2>/dev/null; then
    log "raised fs.inotify.max_user_instances from $ni to $want (Dovecot needs one per IDLE/NOTIFY connection)"
  elif [ "$IMAP_CLIENT_LIMIT" = 1 ]; then
    log "note: fs.inotify.max_user_instances=$ni and it cannot be raised here: only ~$ni IDLE/NOTIFY connections (all stacks of UID $MAIL_USER together) get instant notifications; raise it with sysctl or set IMAP_CLIENT_LIMIT>1"
  fi
}

start_watchdog() {
  local owner=${MAILSTACK_OWNER_PID:-}
  [ -n "$owner" ] || return 0
  [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null || die "MAILSTACK_OWNER_PID=$owner is not a running process"
  stop_watchdog
  setsid "$BASH" "$SELF" watch "$DIR" "$owner" </dev/null >>"$DIR/log/watchdog.log" 2>&1 7>&- 8>&- 9>&- &
  echo $! > "$DIR/watchdog.pid"
}

stop_watchdog() {
  local p
  [ -f "$DIR/watchdog.pid" ] || return 0
  p=$(cat "$DIR/watchdog.pid" 2>/dev/null) || true
  rm -f "$DIR/watchdog.pid"
  # only if that pid still is our watchdog; kill its whole session (the bash and its sleep)
  if [ -n "$p" ] && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF " watch $DIR "; then
    kill -TERM -- "-$p" 2>/dev/null || true
  fi
}

cmd_watch() {
  set_dir "${1:-}"
  local owner=${2:?owner pid}
  while alive "$owner"; do sleep 1; done
  # stopped (or handed to a newer watchdog) meanwhile: nothing to do
  [ "$(cat "$DIR/watchdog.pid" 2>/dev/null)" = "$$" ] || exit 0
  rm -f "$DIR/watchdog.pid"
  log "owner process $owner is gone: stopping $DIR"
  cmd_stop "$DIR"
}

valid_user() {
  [[ "$1" =~ ^[A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+$ ]] || die "user must look like local@domain (got '$1')"
}

# Dovecot reads one passwd-file per user (DIR/users.d/<user>): its auth process stat()s a
# passwd-file at most once per second, so with a single shared file a user added in the same second
# as any earlier login stays invisible for up to 1 s.  A new user's own file is read fresh on first
# lookup.  DIR/users stays the master list (Postfix maps, humans).
sync_userfiles() {
  local d=$DIR/users.d line u f
  mkdir -p "$d"; chown root:dovecot "$d"; chmod 750 "$d"
  local -A want=()
  while IFS= read -r line; do
    [ -n "$line" ] && [ "${line:0:1}" != "#" ] || continue
    u=${line%%:*}; u=${u,,}; want[$u]=1
    f=$d/$u
    if [ ! -f "$f" ] || [ "$(cat "$f")" != "$line" ]; then
      printf '%s\n' "$line" > "$f.tmp"; chown root:dovecot "$f.tmp"; chmod 640 "$f.tmp"
      # Dovecot reloads a passwd-file only when its mtime (whole seconds) or size changed, and a
      # salted hash has a fixed size: a password changed within the same second as the previous
      # write would never be seen.  Give the new file a strictly later mtime. (Its own mtime
      # is compared, not the clock read after writing it: the second can turn in between.)
      if [ -f "$f" ]; then
        local old_mtime new_mtime
        old_mtime=$(stat -c %Y "$f"); new_mtime=$(stat -c %Y "$f.tmp")
        [ "$new_mtime" -gt "$old_mtime" ] || touch -d "@$((old_mtime + 1))" "$f.tmp"
      fi
      mv "$f.tmp" "$f"
    fi
  done < "$DIR/users"
  for f in "$d"/*; do
    [ -f "$f" ] || continue
    u=$(basename "$f"); [ -n "${want[$u]+x}" ] || rm -f "$f"
  done
}

cmd_adduser() {
  set_dir "${1:-}"
  shift || true
  [ $# -ge 2 ] && [ $(( $# % 2 )) = 0 ] || usage
  [ "$(id -u)" = 0 ] || die "must run as root"
  local -a users=() passes=()
  while [ $# -gt 0 ]; do
    valid_user "$1"
    case "$2" in *$'\n'*) die "password must not contain newlines";; esac
    users+=("${1,,}"); passes+=("$2"); shift 2
  done
  resolve_settings
  install_packages
  ensure_mail_user
  mkdir -p "$DIR"; exec 9>>"$DIR/.lock"; flock 9
  [ -f "$ENVFILE" ] || save_settings
  [ -f "$CONF_DC" ] || render_all
  local i user pass hash
  cp -p "$DIR/users" "$DIR/users.tmp"
  for i in "${!users[@]}"; do
    user=${users[$i]}; pass=${passes[$i]}
    if [ "$PASS_SCHEME" = PLAIN ]; then
      case "$pass" in *:*) die "PLAIN passwords must not contain ':'";; esac
      hash="{PLAIN}$pass"
    else
      hash=$($DOVEADM -c "$CONF_DC" pw -s "$PASS_SCHEME" -p "$pass") || die "doveadm pw failed"
    fi
    { awk -F: -v u="$user" 'tolower($1)!=u' "$DIR/users.tmp"; echo "$user:$hash::::::"; } > "$DIR/users.tmp2"
    mv "$DIR/users.tmp2" "$DIR/users.tmp"
  done
  chown root:dovecot "$DIR/users.tmp"; chmod 640 "$DIR/users.tmp"; mv "$DIR/users.tmp" "$DIR/users"
  sync_userfiles
  rebuild_postfix_maps
  if postfix_pid >/dev/null; then $POSTFIX -c "$CONF_PF" reload </dev/null >/dev/null 2>&1 9>&- || true; fi
  if dovecot_pid >/dev/null; then
    for i in "${!users[@]}"; do
      user=${users[$i]}; pass=${passes[$i]}
      # a changed password of an existing user can take up to 1 s to be noticed: poll the userdb
      # (negative lookups are instant), then check the password once it is visible. Up to 10 s:
      # with the whole suite running on two cores, 2 s was once not enough (CI, 2026-11-30).
      local ok=0
      for _ in $(seq 1 200); do
        if $DOVEADM -c "$CONF_DC" auth test -x service=imap "$user" "$pass" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.05
      done
      [ $ok = 1 ] || die "Dovecot auth does not accept $user (see $DIR/log/dovecot.log)"
      # create the special-use folders on disk now ("auto = subscribe" also makes them appear at
      # first LIST/SELECT); "already exists" from a previous adduser is ignored.
      $DOVEADM -c "$CONF_DC" mailbox create -s -u "$user" Drafts Sent Trash Junk Archive 2>/dev/null || true
      # and INBOX: Dovecot creates it at first access, and two first accesses at once (a test's
      # IMAP SELECT while LMTP delivers) race: the loser gets "NO [ALREADYEXISTS]"
      $DOVEADM -c "$CONF_DC" mailbox status -u "$user" messages INBOX >/dev/null 2>&1 || true
      log "user $user ready"
    done
  else
    log "user(s) ${users[*]} added (stack not running)"
  fi
}

cmd_deluser() {
  set_dir "${1:-}"
  local user=${2:-}
  [ -n "$user" ] || usage
  user=${user,,}
  resolve_settings
  exec 9>>"$DIR/.lock"; flock 9
  awk -F: -v u="$user" 'tolower($1)!=u' "$DIR/users" > "$DIR/users.tmp"
  chown root:dovecot "$DIR/users.tmp"; chmod 640 "$DIR/users.tmp"; mv "$DIR/users.tmp" "$DIR/users"
  sync_userfiles
  rebuild_postfix_maps
  if postfix_pid >/dev/null; then $POSTFIX -c "$CONF_PF" reload </dev/null >/dev/null 2>&1 9>&- || true; fi
  log "user $user removed (mail kept under $DIR/mail)"
}

cmd_status() {
  set_dir "${1:-}"
  [ -f "$ENVFILE" ] || die "no stack in $DIR"
  resolve_settings
  local ok=0 p
  if p=$(dovecot_pid); then echo "dovecot: running pid $p"; else echo "dovecot: stopped"; ok=1; fi
  if p=$(postfix_pid); then echo "postfix: running pid $p"; else echo "postfix: stopped"; ok=1; fi
  for v in $PORT_VARS; do echo "$v=${!v}"; done
  echo "users: $(grep -c . "$DIR/users" 2>/dev/null || true)"
  return $ok
}

cmd_install() {
  [ $# = 0 ] || usage
  MAIL_USER=${MAIL_USER:-mailstack}
  install_packages
  ensure_mail_user
}

cmd_env() {
  set_dir "${1:-}"
  local fmt='%s=%s\n' v
  case "${2:-}" in "") ;; --shell) fmt='%s=%q\n';; *) usage;; esac
  resolve_settings
  [ "$PORT_BASE" != auto ] || die "no ports chosen yet for $DIR (PORT_BASE=auto): run start first"
  # shellcheck disable=SC2059  # $fmt is ours
  for v in DIR PORT_BASE $PORT_VARS $OTHER_VARS; do printf "$fmt" "$v" "${!v}"; done
  # shellcheck disable=SC2059
  printf "$fmt" HOST 127.0.0.1 DOVECOT_CONF "$CONF_DC" POSTFIX_CONF "$CONF_PF" \
    LOG_DIR "$DIR/log" TLS_CERT "$DIR/tls/cert.pem"
}

case "${1:-}" in
  start)   shift; cmd_start "$@";;
  stop)    shift; cmd_stop "$@";;
  adduser) shift; cmd_adduser "$@";;
  deluser) shift; cmd_deluser "$@";;
  status)  shift; cmd_status "$@";;
  env)     shift; cmd_env "$@";;
  install) shift; cmd_install "$@";;
  imap-stop)    shift; cmd_imap_stop "$@";;
  imap-restart) shift; cmd_imap_stop "$@"; cmd_start "$@";;
  watch)   shift; cmd_watch "$@";;
  -h|--help|help) usage 0;;
  *) usage;;
esac
