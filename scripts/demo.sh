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

step "6. Start the local mock provider (OpenAI, Groq and custom-backend wire formats)"
PORT=$("$PWD/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$AIOPS" mock-provider --port "$PORT" --latency-ms 20 --responses mock-responses.yaml \
  > "$WORK/mock.log" 2>&1 &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null; rm -rf "$WORK"' EXIT
"$PWD/.venv/bin/python" - "$PORT" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the mock provider did not start")
PY
# Point every provider of providers.yaml at the mock; dummy keys (the mock checks none).
export AIOPS_OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" \
       AIOPS_GROQ_BASE_URL="http://127.0.0.1:$PORT" \
       AIOPS_INTERNAL_BASE_URL="http://127.0.0.1:$PORT/aiops" \
       OPENAI_API_KEY=demo-key GROQ_API_KEY=demo-key INTERNAL_AIOPS_SECRET=demo-secret
echo "mock provider on http://127.0.0.1:$PORT (pid $MOCK_PID)"

step "7. Run functions once: JSON output on stdout"
show "$AIOPS" run classify-ticket -C "$PROJ" --input '{"subject": "Charged twice this month", "body": "My card was charged two times for the same invoice."}'
show "$AIOPS" run translate@0.4.0 -C "$PROJ" --input '{"text": "Good morning", "target": "French"}'
set +e
show "$AIOPS" run summarize -C "$PROJ" --input '{"bullets": 2}'
echo "(exit code $?: 3 means invalid input)"
set -e

step "8. Run a batch of 200 inputs, 32 at a time, with a summary"
"$PWD/.venv/bin/python" - "$WORK/inputs.jsonl" <<'PY'
import json, sys
subjects = ["Charged twice this month", "Cannot log in", "Refund request", "API returns 500"]
with open(sys.argv[1], "w") as out:
    for i in range(200):
        out.write(json.dumps({"subject": subjects[i % 4], "body": f"Ticket {i}: please help."}) + "\n")
PY
show "$AIOPS" run classify-ticket -C "$PROJ" --input-file "$WORK/inputs.jsonl" \
  --output "$WORK/outputs.jsonl" --concurrency 32
head -n 2 "$WORK/outputs.jsonl"

step "9. The executions, logged in the database"
show "$AIOPS" logs classify-ticket -C "$PROJ" --limit 5
show "$AIOPS" logs summarize -C "$PROJ" --status error

step "10. Golden tests, replayed from the recorded cassettes (no network, no key)"
unset AIOPS_OPENAI_BASE_URL AIOPS_GROQ_BASE_URL AIOPS_INTERNAL_BASE_URL OPENAI_API_KEY GROQ_API_KEY INTERNAL_AIOPS_SECRET
show "$AIOPS" test
