#!/usr/bin/env bash
# Runs a real control plane on loopback for the e2e tests: etcd,
# kube-apiserver and kube-controller-manager (built by build.sh). No scheduler
# or kubelet: pods are stored and stay Pending.
#
# Usage
#   start.sh DIR          run in the foreground until stopped; DIR is created
#   start.sh --stop DIR   stop the plane running in DIR and wait for it (idempotent)
#
# The script stays up as the parent of the three processes, so it alone needs
# stopping and it reaps them (this machine's init leaves orphans as zombies).
# It stops them all (controller-manager, API server, then etcd) and exits when:
#   - it gets SIGTERM, SIGINT or SIGHUP (or `start.sh --stop DIR`);
#   - the process CONTROL_PLANE_WATCH_PID is gone (default: its parent, so a
#     test runner that dies leaves nothing behind);
#   - one of the three exits by itself (then it exits 1).
#
# In (environment, all optional):
#   CONTROL_PLANE_BIN        where the binaries are (default: bin/ next to this script)
#   CONTROL_PLANE_WATCH_PID  see above (default: $PPID)
#   CONTROL_PLANE_TIMEOUT    seconds to wait for readiness (default 120)
#
# Out: once ready (/readyz ok, and the controller-manager has created
# ServiceAccount default/default), it prints the kubeconfig path as ONE line on
# stdout and writes the same path to DIR/ready; progress goes to stderr. If it
# exits before that, start-up failed (log tails are on stderr). In DIR:
#   kubeconfig     admin user in group system:masters (allowed everything), certs inlined
#   env            shell-sourceable: KUBECONFIG APISERVER_URL CA_CERT CA_KEY
#                  ADMIN_CERT ADMIN_KEY ETCD_URL
#   pki/ca.crt|key the cluster CA; it can also sign a webhook's serving cert
#   logs/*.log     one per component: print them when a test fails
#   pid            this script's pid while it runs
#
# From node (vitest): spawn("bash", [start.sh, dir], {stdio: ["ignore", "pipe", "inherit"]}),
# read the first stdout line; to stop, child.kill("SIGTERM") and await "exit".
# From bash: start.sh DIR & then poll for DIR/ready; stop with kill or --stop.
#
# Webhooks at clientConfig.url https://127.0.0.1:PORT/...: no egress selector is
# configured, so the API server dials loopback directly (Go never proxies
# loopback; NO_PROXY is extended anyway). The webhook's serving cert needs an IP
# SAN 127.0.0.1, and the API server appends ?timeout=Ns to the path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${CONTROL_PLANE_BIN:-$here/bin}
log() { echo "control-plane: $*" >&2; }
# A zombie still answers kill -0, so read the state instead.
alive() { local st; [ -r "/proc/$1/stat" ] && read -r _ _ st _ < "/proc/$1/stat" && [ "$st" != Z ]; }

if [ "${1:-}" = --stop ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --stop DIR" >&2; exit 2; }
  pid=$(cat "$2/pid" 2>/dev/null) || exit 0
  # Only signal it if it still is a start.sh (pids get reused).
  grep -qa start.sh "/proc/$pid/cmdline" 2>/dev/null || exit 0
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid"; do sleep 0.1; done
  exit 0
fi
[ -n "${1:-}" ] || { echo "usage: $0 DIR | $0 --stop DIR" >&2; exit 2; }
for b in etcd kube-apiserver kube-controller-manager; do
  [ -x "$bin/$b" ] || { log "$bin/$b missing: run $here/build.sh first"; exit 1; }
done
mkdir -p "$1"
dir=$(cd "$1" && pwd)
if pid=$(cat "$dir/pid" 2>/dev/null) && alive "$pid"; then log "a plane already runs in $dir"; exit 1; fi
rm -rf "$dir/ready" "$dir/etcd" "$dir/logs"
mkdir -p "$dir/pki" "$dir/logs"
echo $$ > "$dir/pid"
watch_pid=${CONTROL_PLANE_WATCH_PID:-$PPID}

pids=() names=() # start order
sleeper=
stop_all() {
  local pid i
  # Reverse order, one at a time: the API server shuts down promptly only while
  # etcd is still there.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=() names=()
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  rm -f "$dir/ready" "$dir/pid"
}
ready=
trap 'rc=$?; [ -n "$ready" ] || tail -n 30 "$dir"/logs/*.log >&2 2>/dev/null; stop_all; exit $rc' EXIT
trap 'exit 0' TERM INT HUP

# Ports below the kernel's ephemeral range (32768+), so outgoing connections
# can't hold them; checked free rather than reserved, good enough for tests.
taken=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    case $taken in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
etcd_port=$(free_port); taken="$taken$etcd_port "
peer_port=$(free_port); taken="$taken$peer_port "
api_port=$(free_port)

# --- PKI: one ECDSA CA; the API server's cert needs IP SAN 127.0.0.1 because
# clients dial the IP; the admin is in system:masters, which RBAC lets do anything.
pki=$dir/pki
(
  cd "$pki"
  newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  sign() { # name subject extensions
    newkey "$1.key"
    openssl req -new -key "$1.key" -subj "$2" 2>/dev/null |
      openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -sha256 \
        -extfile <(printf '%s\n' "$3") -out "$1.crt" 2>/dev/null
  }
  newkey ca.key
  openssl req -x509 -new -key ca.key -subj /CN=e2e-control-plane-ca -days 7 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out ca.crt 2>/dev/null
  sign apiserver /CN=kube-apiserver "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
  sign admin "/O=system:masters/CN=e2e-admin" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
  # Signs and verifies service-account tokens (the ServiceAccount admission plugin stays on).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
)

b64() { base64 -w0 < "$1"; }
cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: e2e-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e-admin}
current-context: e2e
EOF
cat > "$dir/env" <<EOF
KUBECONFIG=$dir/kubeconfig
APISERVER_URL=https://127.0.0.1:$api_port
CA_CERT=$pki/ca.crt
CA_KEY=$pki/ca.key
ADMIN_CERT=$pki/admin.crt
ADMIN_KEY=$pki/admin.key
ETCD_URL=http://127.0.0.1:$etcd_port
EOF

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
run() { # name args...: start in the background, stdin closed, log to logs/NAME.log
  local name=$1; shift
  "$bin/$name" "$@" < /dev/null > "$dir/logs/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
}
t0=$(date +%s)
deadline=$((t0 + ${CONTROL_PLANE_TIMEOUT:-120}))
check() { # every child still up, and the watched process too
  local i
  for i in "${!pids[@]}"; do alive "${pids[i]}" || { log "${names[i]} exited"; exit 1; }; done
  alive "$watch_pid" || { log "process $watch_pid is gone, stopping"; exit 0; }
}
wait_for() { # what command...: poll until the command succeeds
  local what=$1; shift
  until "$@" > /dev/null 2>&1; do
    check
    [ "$(date +%s)" -lt "$deadline" ] || { log "$what: timed out"; exit 1; }
    sleep 0.3
  done
  log "$what after $(( $(date +%s) - t0 ))s"
}
api() { curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$api_port$1"; }

# --unsafe-no-fsync: test data is thrown away, and fsync dominates etcd latency.
run etcd --name e2e --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "e2e=http://127.0.0.1:$peer_port" --initial-cluster-state new \
  --unsafe-no-fsync --log-level warn
wait_for "etcd healthy" curl -fsS "http://127.0.0.1:$etcd_port/health"

# MutatingAdmissionWebhook is on by default; naming it documents that we rely on it.
# --endpoint-reconciler-type=none: nothing here needs the default/kubernetes
# Endpoints, and it keeps the API server from publishing its advertise address.
run kube-apiserver \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC \
  --enable-admission-plugins MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
  --service-account-issuer "https://127.0.0.1:$api_port" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --endpoint-reconciler-type none \
  --allow-privileged=true \
  --profiling=false \
  --v=1
wait_for "kube-apiserver ready" api /readyz

# Runs only what turns a Deployment into Pods and lets pods be admitted
# (serviceaccount creates each namespace's "default" SA) and namespaces be deleted.
# It uses the admin kubeconfig, so no per-controller credentials are needed.
run kube-controller-manager \
  --kubeconfig "$dir/kubeconfig" \
  --leader-elect=false \
  --controllers serviceaccount-controller,deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller \
  --secure-port 0 \
  --v=1
wait_for "kube-controller-manager running (ServiceAccount default/default exists)" \
  api /api/v1/namespaces/default/serviceaccounts/default

ready=1
echo "$dir/kubeconfig" > "$dir/ready"
echo "$dir/kubeconfig"
# `wait` on a background sleep, not a plain sleep: bash runs traps only between
# commands, and wait returns as soon as a signal arrives.
while :; do
  check
  sleep 1 & sleeper=$!
  wait "$sleeper" || true
done
