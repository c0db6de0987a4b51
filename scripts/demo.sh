#!/usr/bin/env bash
# The main job on the embedded default: a sandbox Milvus 2.3.5 on RocksMQ, seeded, planned,
# migrated to NATS, verified, its report printed, and brought down (always, even on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
MM=".venv/bin/milvus-migrate"
DIR="${DEMO_DIR:-.demo/sandbox}"

trap '$MM sandbox down --dir "$DIR" >/dev/null 2>&1 || true' EXIT

if [ -f "$DIR/sandbox.json" ]; then
    # A demo run again starts from RocksMQ: a new sandbox, not the one migrated last time.
    $MM sandbox down --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
fi
echo "== sandbox up (Milvus 2.3.5 on RocksMQ)"
$MM sandbox up --dir "$DIR"
echo "== seed"
$MM sandbox seed --dir "$DIR"
echo "== plan (read-only)"
$MM plan --playbook "$DIR/playbook.yaml" --to natsmq --out "$DIR/plan.json"
echo "== apply"
$MM apply "$DIR/plan.json" --yes
echo "== verify"
$MM verify --playbook "$DIR/playbook.yaml"
echo "== status"
$MM sandbox status --dir "$DIR"
echo "== down"
$MM sandbox down --dir "$DIR"
trap - EXIT
