#!/usr/bin/env bash
# Smoke check of the control plane, with curl and node only (no kubectl, no
# project code): builds if needed, starts a plane, registers a throwaway
# mutating webhook at https://127.0.0.1:PORT/inject served by an inline node
# server, creates a namespace and a Deployment, and waits until the
# ReplicaSet's Pod exists and carries the webhook's mark. Stops everything.
# Usage: smoke.sh [DIR]   (default: a fresh temp dir, removed afterwards)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
"$here/build.sh" >&2
dir=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap_rm="rm -rf $dir"
trap '[ -z "${hook_pid:-}" ] || kill "$hook_pid" 2>/dev/null; "$here/start.sh" --stop "$dir"; wait; ${trap_rm:-}' EXIT

t0=$(date +%s)
"$here/start.sh" "$dir" > /dev/null &
plane_pid=$!
until [ -s "$dir/ready" ]; do
  kill -0 "$plane_pid" 2>/dev/null || { echo "smoke: control plane failed to start" >&2; exit 1; }
  sleep 0.2
done
echo "smoke: control plane ready in $(( $(date +%s) - t0 ))s, kubeconfig $(cat "$dir/ready")"
set -a; . "$dir/env"; set +a  # exported: until_ok runs api in sh -c

api() { # method path [json]
  curl -fsS --cacert "$CA_CERT" --cert "$ADMIN_CERT" --key "$ADMIN_KEY" -X "$1" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$APISERVER_URL$2"
}
until_ok() { # seconds command...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || { echo "smoke: timed out: $*" >&2; return 1; }; sleep 0.5; done
}

# Webhook serving cert from the plane's CA; the IP SAN is what the API server checks.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/hook.key" 2>/dev/null
openssl req -new -key "$dir/hook.key" -subj /CN=smoke-hook 2>/dev/null |
  openssl x509 -req -CA "$CA_CERT" -CAkey "$CA_KEY" -CAcreateserial -days 1 -sha256 -out "$dir/hook.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') 2>/dev/null
# Adds the label smoke-injected=yes to every pod it is asked about.
node -e '
const fs = require("fs"), https = require("https");
const srv = https.createServer({ key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) }, (req, res) => {
  let body = ""; req.on("data", (c) => (body += c)); req.on("end", () => {
    const review = JSON.parse(body);
    const patch = [{ op: "add", path: "/metadata/labels", value: { ...(review.request.object.metadata.labels || {}), "smoke-injected": "yes" } }];
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
      response: { uid: review.request.uid, allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(patch)).toString("base64") } }));
  });
});
srv.listen(0, "127.0.0.1", () => fs.writeFileSync(process.argv[3], String(srv.address().port)));
' "$dir/hook.key" "$dir/hook.crt" "$dir/hook.port" &
hook_pid=$!
until_ok 10 test -s "$dir/hook.port"
hook_port=$(cat "$dir/hook.port")

api POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations "$(cat <<EOF
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration","metadata":{"name":"smoke"},
 "webhooks":[{"name":"smoke.e2e.local","clientConfig":{"url":"https://127.0.0.1:$hook_port/inject","caBundle":"$(base64 -w0 < "$CA_CERT")"},
  "rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}],
  "namespaceSelector":{"matchLabels":{"smoke":"yes"}},
  "admissionReviewVersions":["v1"],"sideEffects":"None","failurePolicy":"Fail","timeoutSeconds":10}]}
EOF
)" > /dev/null
api POST /api/v1/namespaces '{"metadata":{"name":"smoke","labels":{"smoke":"yes"}}}' > /dev/null
pod='{"metadata":{"name":"probe"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}'
# The namespace's default ServiceAccount comes from the controller-manager, and the
# webhook configuration reaches admission through an informer: retry a dry-run pod until both hold.
until_ok 30 sh -c "$(declare -f api); api POST '/api/v1/namespaces/smoke/pods?dryRun=All' '$pod' 2>/dev/null | grep -q smoke-injected"
echo "smoke: webhook at https://127.0.0.1:$hook_port/inject mutates pods (dry-run) after $(( $(date +%s) - t0 ))s"

t1=$(date +%s)
api POST /apis/apps/v1/namespaces/smoke/deployments '{"metadata":{"name":"web"},"spec":{"replicas":1,
  "selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}' > /dev/null
pods() { api GET '/api/v1/namespaces/smoke/pods?labelSelector=app%3Dweb'; }
until_ok 60 sh -c "$(declare -f api pods); pods | grep '\"kind\": \"ReplicaSet\"' > /dev/null"
pods > "$dir/pods.json"
grep -q '"smoke-injected": "yes"' "$dir/pods.json" || { echo "smoke: Deployment pod was not mutated" >&2; cat "$dir/pods.json" >&2; exit 1; }
echo "smoke: Deployment -> ReplicaSet -> Pod $(grep -m1 '"name": "web-' "$dir/pods.json" | tr -d ' ,') created and mutated in $(( $(date +%s) - t1 ))s"
echo "smoke: ok"
