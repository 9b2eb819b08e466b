#!/usr/bin/env bash
# The offline demo: everything runs on this machine (embedded SQLite, the mock provider,
# recorded cassettes); no API key and no network are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
AIOPS="$PWD/.venv/bin/aiops"
WORK="$(mktemp -d -t aiops-demo.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. Scaffold a new project and validate it"
show "$AIOPS" init "$WORK/project"
show "$AIOPS" validate "$WORK/project"

step "2. Validate this repository's own functions"
show "$AIOPS" validate .

step "3. A broken copy: every error with its file:line:column and the fix"
rm -rf "$WORK/broken" && mkdir -p "$WORK/broken" && cp -r functions providers.yaml "$WORK/broken/"
sed -i 's/temperature: 0.2/temprature: 0.2/' "$WORK/broken/functions/summarize/function.yaml"
sed -i 's/{{ text }}/{{ txt }}/' "$WORK/broken/functions/extract-entities/function.yaml"
sed -i 's/provider: openai/provider: opnai/' "$WORK/broken/functions/classify-ticket/function.yaml"
printf 'apiVersion: aiops/v1\nname: translate\nname: again\n' > "$WORK/broken/functions/translate/function.yaml"
set +e
show "$AIOPS" validate "$WORK/broken"
echo "(exit code $?)"
set -e

step "4. Reconcile: apply this repository's functions to the embedded SQLite database"
PROJ="$WORK/repo"
mkdir -p "$PROJ" && cp -r functions providers.yaml "$PROJ/"
show "$AIOPS" plan -C "$PROJ"
show "$AIOPS" apply -C "$PROJ" --auto-approve --actor demo

step "5. Edit a prompt (with a version bump) and a description, then plan and apply again"
sed -i 's/version: 2.1.0/version: 2.2.0/; s/Priority 1 is most urgent, 4 least./Priority 1 is most urgent (outage, data loss), 4 least./' \
  "$PROJ/functions/classify-ticket/function.yaml"
sed -i 's/^description: Summarize an article into a few bullet points./description: Summarize any article into a few bullet points./' \
  "$PROJ/functions/summarize/function.yaml"
set +e
show "$AIOPS" plan -C "$PROJ" --detailed-exitcode
echo "(exit code $?: 2 means changes)"
set -e
show "$AIOPS" apply -C "$PROJ" --auto-approve --actor demo
show "$AIOPS" plan -C "$PROJ"
show "$AIOPS" status -C "$PROJ"
