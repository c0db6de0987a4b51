#!/usr/bin/env bash
# The main job on the embedded default: a sandbox Milvus 2.3.5 on RocksMQ, seeded, then shown
# and brought down again (always, even when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
MM=".venv/bin/milvus-migrate"
DIR="${DEMO_DIR:-.demo/sandbox}"

trap '$MM sandbox down --dir "$DIR" >/dev/null 2>&1 || true' EXIT

$MM sandbox up --dir "$DIR"
$MM sandbox seed --dir "$DIR"
$MM sandbox status --dir "$DIR"
$MM sandbox down --dir "$DIR"
trap - EXIT
