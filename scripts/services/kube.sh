#!/usr/bin/env bash
# A real Kubernetes API server for the Kubernetes driver's tests: etcd, kube-apiserver and
# kube-controller-manager 1.20.2, built from Debian 12's `kubernetes` source package (no binary
# kube-apiserver, kind, k3s or kwok is packaged) and run on 127.0.0.1. There is no scheduler and no
# kubelet: the tests play both (they bind pods to a Node and patch pod status).
#
#   bash scripts/services/kube.sh build         # build once per machine; prints the binaries' folder
#   eval "$(bash scripts/services/kube.sh)"     # start (or reuse) it; prints the export lines below
#   bash scripts/services/kube.sh stop          # stop it and remove its state
#   bash scripts/services/kube.sh status        # exit 0 when it is up and answering
#
# Prints on stdout only:  export ASSAY_TEST_KUBE_SERVER=... ASSAY_TEST_KUBE_CA_FILE=...
#                         ASSAY_TEST_KUBE_TOKEN=... ASSAY_TEST_KUBE_CONFIG=... ASSAY_TEST_KUBE_VERSION=...
# Progress goes to stderr. Starting again while it runs only prints the exports. etcd keeps its data in
# the run folder; a stop removes it.
#
# The build (8-15 minutes on two cores) happens at most once per machine: the two binaries are
# kept in /var/cache/assay/kube-<key>, where the key covers the source package version, the patch below
# and the build targets; the 2.2 GB build tree is deleted after the binaries are copied out. Two runs
# building at once wait for each other (a lock beside the cache folder).
# Environment: ASSAY_KUBE_DIR (run folder, default /tmp/assay-kube), ASSAY_KUBE_PORT (the API server's,
# default 6443), ASSAY_KUBE_ETCD_PORT (default 12379, clear of a packaged etcd; the peer port is the next one),
# ASSAY_KUBE_CM_PORT (the controller-manager's, default 10257), ASSAY_KUBE_CACHE (default /var/cache/assay).
set -euo pipefail

# Debian 12 (bookworm) ships Kubernetes 1.20.2 as source only. The version is pinned (it is part of the cache
# key); should a point release replace it, the build says which version Debian offers instead: set that here
# (or in ASSAY_KUBE_SOURCE_VERSION), which builds once more under a new key.
KUBE_SOURCE_PACKAGE=kubernetes
KUBE_SOURCE_VERSION="${ASSAY_KUBE_SOURCE_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}"
KUBE_VERSION=1.20.2
KUBE_TARGETS="cmd/kube-apiserver cmd/kube-controller-manager"
BUILD_PACKAGES=(golang-go golang-github-modern-go-reflect2-dev rsync jq openssl curl)
RUN_PACKAGES=(etcd-server etcd-client openssl curl)

DIR="${ASSAY_KUBE_DIR:-/tmp/assay-kube}"
PORT="${ASSAY_KUBE_PORT:-6443}"
ETCD_PORT="${ASSAY_KUBE_ETCD_PORT:-12379}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
CM_PORT="${ASSAY_KUBE_CM_PORT:-10257}"
CACHE_ROOT="${ASSAY_KUBE_CACHE:-/var/cache/assay}"
SERVER="https://127.0.0.1:$PORT"
# Only the export lines go to stdout (fd 3); everything else to stderr.
exec 3>&1 1>&2

log() { echo "kube.sh: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The one change made to the sources. Kubernetes 1.20 vendors reflect2 v1.0.1, which crashes under
# Debian's Go 1.19 on the first custom-resource write; Debian's packaged reflect2 does not.
patch_sources() {
  rm -rf vendor/github.com/modern-go/reflect2
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
  rm -f vendor/github.com/modern-go/reflect2/go.mod
}

cache_key() {
  { echo "$KUBE_SOURCE_PACKAGE=$KUBE_SOURCE_VERSION"; echo "$KUBE_TARGETS"; declare -f patch_sources; } \
    | sha256sum | cut -c1-12
}

BIN_DIR="$CACHE_ROOT/kube-$(cache_key)"

built() { [ -f "$BIN_DIR/BUILD-INFO" ] && [ -x "$BIN_DIR/bin/kube-apiserver" ] && [ -x "$BIN_DIR/bin/kube-controller-manager" ]; }

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# apt-get source needs a deb-src entry for bookworm main: the same URI and key as the deb entry.
ensure_deb_src() {
  if apt-cache showsrc "$KUBE_SOURCE_PACKAGE" 2>/dev/null | grep -x "Version: $KUBE_SOURCE_VERSION" >/dev/null; then
    return 0
  fi
  local list=/etc/apt/sources.list.d/assay-deb-src.sources
  if [ ! -f "$list" ]; then
    log "adding a deb-src entry for bookworm main ($list)"
    cat >"$list" <<'EOF'
# Added by Assay's scripts/services/kube.sh: Kubernetes 1.20 is built from Debian's source package.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq >/dev/null
  if ! apt-cache showsrc "$KUBE_SOURCE_PACKAGE" | grep -x "Version: $KUBE_SOURCE_VERSION" >/dev/null; then
    log "Debian offers no $KUBE_SOURCE_PACKAGE source $KUBE_SOURCE_VERSION; it offers:"
    apt-cache showsrc "$KUBE_SOURCE_PACKAGE" | grep '^Version:' >&2 || true
    exit 1
  fi
}

build() {
  if built; then
    echo "$BIN_DIR" >&3
    return 0
  fi
  mkdir -p "$CACHE_ROOT"
  # One build per machine: a second caller waits here, then finds the binaries.
  exec 8>"$BIN_DIR.lock"
  flock 8
  if built; then
    echo "$BIN_DIR" >&3
    return 0
  fi
  local started tree
  started=$(date +%s)
  apt_install "${BUILD_PACKAGES[@]}"
  ensure_deb_src
  tree="$(mktemp -d /var/tmp/assay-kube-build.XXXXXX)"
  # The build tree is 2.2 GB: it goes whatever happens.
  # shellcheck disable=SC2064
  trap "rm -rf '$tree'" EXIT
  log "building Kubernetes $KUBE_VERSION ($KUBE_TARGETS) in $tree: 8-15 minutes"
  (
    cd "$tree"
    apt-get source --download-only -qq "$KUBE_SOURCE_PACKAGE=$KUBE_SOURCE_VERSION" >/dev/null
    tar xf "$(ls "$KUBE_SOURCE_PACKAGE"_*.orig.tar.*)"
    cd "$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -1)"
    patch_sources
    mkdir -p .go/src/k8s.io
    ln -sfn ../../.. .go/src/k8s.io/kubernetes
    export GOPATH="$PWD/.go" CGO_ENABLED=0 GOPROXY=off HOME="$tree/home"
    mkdir -p "$HOME"
    local target
    for target in $KUBE_TARGETS; do
      log "make WHAT=$target"
      make WHAT="$target" >"$tree/make.log" 2>&1 || { tail -40 "$tree/make.log" >&2; exit 1; }
    done
    rm -rf "$BIN_DIR.tmp"
    mkdir -p "$BIN_DIR.tmp/bin"
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager "$BIN_DIR.tmp/bin/"
    {
      echo "source: $KUBE_SOURCE_PACKAGE $KUBE_SOURCE_VERSION (Debian bookworm)"
      echo "targets: $KUBE_TARGETS"
      echo "patch: vendor/github.com/modern-go/reflect2 replaced by Debian's golang-github-modern-go-reflect2-dev $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
      echo "go: $(go version)"
      echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - started)) s"
    } >"$BIN_DIR.tmp/BUILD-INFO"
  )
  mv "$BIN_DIR.tmp" "$BIN_DIR"
  rm -rf "$tree"
  trap - EXIT
  log "built in $(($(date +%s) - started)) s; binaries in $BIN_DIR"
  flock -u 8
  echo "$BIN_DIR" >&3
}

print_exports() {
  {
    echo "export ASSAY_TEST_KUBE_SERVER=$SERVER"
    echo "export ASSAY_TEST_KUBE_CA_FILE=$DIR/certs/apiserver.crt"
    echo "export ASSAY_TEST_KUBE_TOKEN=$(cut -d, -f1 "$DIR/tokens.csv")"
    echo "export ASSAY_TEST_KUBE_CONFIG=$DIR/kubeconfig"
    echo "export ASSAY_TEST_KUBE_VERSION=$KUBE_VERSION"
  } >&3
}

# The token goes in a header file, not on curl's command line (where `ps` would show it).
api_answers() {
  [ -f "$DIR/auth.header" ] && [ -f "$DIR/certs/apiserver.crt" ] \
    && curl -fsS -o /dev/null --max-time 2 --cacert "$DIR/certs/apiserver.crt" -H "@$DIR/auth.header" \
      "$SERVER/readyz" 2>/dev/null
}

stop() {
  # The controller-manager and the API server before etcd.
  local name pidfile pid
  for name in kube-controller-manager kube-apiserver etcd; do
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

# Start a server in the background with no descriptor of the caller's but its log: fd 3 is the caller's
# `$(...)` pipe, and a server holding it would keep that substitution waiting forever.
daemon() {
  local name="$1"
  shift
  "$@" </dev/null >>"$DIR/log/$name.log" 2>&1 3>&- 8>&- &
  echo $! >"$DIR/run/$name.pid"
}

write_kubeconfig() {
  local token="$1"
  cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: assay-test
  cluster:
    server: $SERVER
    certificate-authority: $DIR/certs/apiserver.crt
users:
- name: assay-test-admin
  user:
    token: $token
contexts:
- name: assay-test
  context:
    cluster: assay-test
    user: assay-test-admin
    namespace: default
current-context: assay-test
EOF
  chmod 600 "$DIR/kubeconfig"
}

start() {
  if pid_alive "$DIR/run/kube-apiserver.pid" && api_answers; then
    log "already running at $SERVER"
    print_exports
    return 0
  fi
  [ -d "$DIR" ] && { log "clearing a stale run folder $DIR"; stop; }
  build 3>/dev/null
  apt_install "${RUN_PACKAGES[@]}"

  local started token
  started=$(date +%s)
  mkdir -p "$DIR"/{run,log,certs,etcd-data}
  chmod 700 "$DIR"
  token="$(tr -dc 'a-z0-9' </dev/urandom | head -c 32 || true)"
  echo "$token,assay-admin,assay-admin,system:masters" >"$DIR/tokens.csv"
  echo "Authorization: Bearer $token" >"$DIR/auth.header"
  chmod 600 "$DIR/tokens.csv" "$DIR/auth.header"
  openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  write_kubeconfig "$token"

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  daemon etcd etcd --name assay --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "assay=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync
  for _ in $(seq 60); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null && break
    sleep 0.25
  done

  log "starting kube-apiserver $KUBE_VERSION on $SERVER"
  daemon kube-apiserver "$BIN_DIR/bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$PORT" --insecure-port=0 \
    --cert-dir="$DIR/certs" --token-auth-file="$DIR/tokens.csv" --authorization-mode=AlwaysAllow \
    --service-cluster-ip-range=10.0.0.0/16 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/sa.key" --service-account-signing-key-file="$DIR/sa.key"
  for _ in $(seq 240); do api_answers && break; sleep 0.25; done
  api_answers || { log "the API server did not become ready; see $DIR/log/kube-apiserver.log"; exit 1; }

  log "starting kube-controller-manager"
  daemon kube-controller-manager "$BIN_DIR/bin/kube-controller-manager" --kubeconfig="$DIR/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$CM_PORT" --port=0 \
    --service-account-private-key-file="$DIR/sa.key" --root-ca-file="$DIR/certs/apiserver.crt" \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-nodelifecycle,-service'
  sleep 1
  pid_alive "$DIR/run/kube-controller-manager.pid" \
    || { log "kube-controller-manager exited; see $DIR/log/kube-controller-manager.log"; exit 1; }
  log "ready in $(($(date +%s) - started)) s (state in $DIR)"
  print_exports
}

case "${1:-start}" in
  start) start ;;
  build) build ;;
  stop) stop; log "stopped" ;;
  env) print_exports ;;
  status) pid_alive "$DIR/run/kube-apiserver.pid" && api_answers ;;
  *) echo "usage: $0 [start|build|stop|status|env]" >&2; exit 2 ;;
esac
