#!/usr/bin/env bash
# A real S3 server for the storage tests: a single-node Ceph cluster (one monitor, one memstore OSD,
# cephx auth) with the RADOS Gateway on 127.0.0.1:7480, all from Debian's packages.
#
#   eval "$(bash scripts/services/s3.sh)"     # start (or reuse) it; prints the export lines below
#   bash scripts/services/s3.sh stop           # stop it and remove its state
#   bash scripts/services/s3.sh status         # exit 0 when it is up and answering
#
# Prints on stdout only:  export ASSAY_TEST_S3_ENDPOINT=... ASSAY_TEST_S3_ACCESS_KEY=...
#                         ASSAY_TEST_S3_SECRET_KEY=... ASSAY_TEST_S3_BUCKET=...
# Progress goes to stderr. Starting again while it runs only prints the exports. The OSD keeps objects
# in memory (memstore): a stop loses everything, which is what tests want.
# Environment: ASSAY_S3_DIR (state folder, default /tmp/assay-s3), ASSAY_S3_PORT (default 7480),
# ASSAY_S3_MON_PORT (the Ceph monitor's, default 3300), ASSAY_S3_BUCKET (default assay-test).
set -euo pipefail

DIR="${ASSAY_S3_DIR:-/tmp/assay-s3}"
PORT="${ASSAY_S3_PORT:-7480}"
MON_PORT="${ASSAY_S3_MON_PORT:-3300}"
BUCKET="${ASSAY_S3_BUCKET:-assay-test}"
ENDPOINT="http://127.0.0.1:$PORT"
export CEPH_CONF="$DIR/ceph.conf"
# Only the export lines go to stdout (fd 3); everything else, Ceph's chatter included, to stderr.
exec 3>&1 1>&2

log() { echo "s3.sh: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

print_exports() {
  # shellcheck disable=SC1091
  . "$DIR/s3.env"
  {
    echo "export ASSAY_TEST_S3_ENDPOINT=$ENDPOINT"
    echo "export ASSAY_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
    echo "export ASSAY_TEST_S3_SECRET_KEY=$SECRET_KEY"
    echo "export ASSAY_TEST_S3_BUCKET=$BUCKET"
  } >&3
}

s3_answers() { curl -fsS -o /dev/null --max-time 2 "$ENDPOINT/" 2>/dev/null; }

stop() {
  # The gateway first, then the OSD, then the monitor.
  local name pidfile pid
  for name in client.rgw.a osd.0 mon.a; do
    pidfile="$DIR/run/$name.pid"
    if pid_alive "$pidfile"; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$DIR"
}

install_packages() {
  local missing=()
  for bin in radosgw ceph-mon ceph-osd ceph radosgw-admin ceph-authtool monmaptool; do
    command -v "$bin" >/dev/null || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Ceph (radosgw ceph-mon ceph-osd ceph-common) from Debian"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd ceph-common >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd ceph-common >/dev/null
  fi
}

# Start a Ceph daemon (it forks into the background) with no inherited descriptor but its log: fd 3
# is the caller's `$(...)` pipe, and a daemon holding it would keep that substitution waiting forever.
daemon() {
  "$@" </dev/null >>"$DIR/log/daemons.start.log" 2>&1 3>&-
}

random_string() { tr -dc "$1" </dev/urandom | head -c "$2" || true; }

write_config() {
  local fsid="$1"
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/\$name/keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/\$name
osd data = $DIR/\$name
rgw data = $DIR/\$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw enable usage log = false
EOF
}

start() {
  if [ -f "$DIR/s3.env" ] && pid_alive "$DIR/run/client.rgw.a.pid" && s3_answers; then
    log "already running at $ENDPOINT"
    print_exports
    return 0
  fi
  [ -d "$DIR" ] && { log "clearing a stale state folder $DIR"; stop; }
  install_packages

  local started fsid
  started=$(date +%s)
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  mkdir -p "$DIR"/{run,log,mon.a,osd.0,client.admin,client.rgw.a}
  write_config "$fsid"

  log "creating the monitor"
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/client.admin/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.admin/keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
  daemon ceph-mon -i a
  ceph --connect-timeout 30 status >/dev/null

  log "creating the OSD (memstore)"
  local osd_uuid osd_id
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  osd_id="$(ceph osd new "$osd_uuid")"
  [ "$osd_id" = 0 ] || { log "expected osd.0, got osd.$osd_id"; exit 1; }
  ceph auth get-or-create osd.0 mon 'allow profile osd' osd 'allow *' mgr 'allow profile osd' \
    -o "$DIR/osd.0/keyring"
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$DIR/log/osd.0.mkfs.log"
  ceph osd crush add osd.0 1 root=default >/dev/null 2>&1
  daemon ceph-osd -i 0
  for _ in $(seq 120); do
    ceph osd dump 2>/dev/null | grep -q '^osd.0 up' && break
    sleep 0.5
  done
  ceph osd dump | grep -q '^osd.0 up' || { log "osd.0 did not come up; see $DIR/log"; exit 1; }

  log "starting the RADOS Gateway on $ENDPOINT"
  ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$DIR/client.rgw.a/keyring"
  daemon radosgw -n client.rgw.a
  for _ in $(seq 240); do s3_answers && break; sleep 0.5; done
  s3_answers || { log "the gateway did not answer on $ENDPOINT; see $DIR/log/client.rgw.a.log"; exit 1; }

  local access secret
  access="$(random_string 'A-Z0-9' 20)"
  secret="$(random_string 'A-Za-z0-9' 40)"
  radosgw-admin user create --uid=assay-ci --display-name="Assay CI" \
    --access-key="$access" --secret="$secret" >/dev/null
  printf 'ACCESS_KEY=%s\nSECRET_KEY=%s\n' "$access" "$secret" >"$DIR/s3.env"
  chmod 600 "$DIR/s3.env"

  # Create the bucket with a SigV4-signed request (the user may need a moment to be visible).
  local code="" EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  for _ in $(seq 30); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$access:$secret" -H "x-amz-content-sha256: $EMPTY_SHA256" -X PUT "$ENDPOINT/$BUCKET" || true)"
    [ "$code" = 200 ] || [ "$code" = 409 ] && break
    sleep 0.5
  done
  [ "$code" = 200 ] || [ "$code" = 409 ] || { log "could not create bucket $BUCKET (HTTP $code)"; exit 1; }
  log "ready in $(($(date +%s) - started)) s (state in $DIR)"
  print_exports
}

case "${1:-start}" in
  start) start ;;
  stop) stop; log "stopped" ;;
  env) print_exports ;;
  status) [ -f "$DIR/s3.env" ] && pid_alive "$DIR/run/client.rgw.a.pid" && s3_answers ;;
  *) echo "usage: $0 [start|stop|status|env]" >&2; exit 2 ;;
esac
