#!/usr/bin/env bash
# `make run`: from a fresh clone to a server with demo data, ending with one box: the URLs on PORT, the demo
# tokens, the admin's password and each start-up warning once (scripts/first_run_box.py). With REDIS_URL
# set, a Celery worker and beat run beside it; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG="${DEBUG:-1}"
export PORT="${PORT:-8000}"
# E-mailed links point at this server unless told otherwise.
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
# Every process below would log the same start-up warnings; the box says each once instead.
export START_WARNINGS=0
BIN=.venv/bin

work_dir="$(mktemp -d)"
pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work_dir"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput --verbosity 0
$BIN/python manage.py load_demo --json "$work_dir/demo.json"

started=()
if [ -n "${REDIS_URL:-}" ]; then
  # Each writes a file in PROCESS_READY_DIR once started; the box waits for them, so their logs come first.
  export PROCESS_READY_DIR="$work_dir"
  started=(--started "$work_dir/worker" --started "$work_dir/beat")
  $BIN/celery -A recovery_project --quiet worker --loglevel INFO --concurrency 2 &
  pids+=($!)
  $BIN/celery -A recovery_project --quiet beat --loglevel INFO --schedule "$work_dir/beat-schedule" &
  pids+=($!)
  tasks="a Celery worker and beat, through the broker at REDIS_URL"
else
  $BIN/python manage.py run_periodic_tasks --every 30 &
  pids+=($!)
  tasks="run eagerly inside the web process; periodic tasks every 30 s (manage.py run_periodic_tasks)"
fi

$BIN/python manage.py runserver "127.0.0.1:$PORT" --noreload &
server=$!
pids+=("$server")
$BIN/python scripts/first_run_box.py --port "$PORT" --demo "$work_dir/demo.json" --server-pid "$server" \
  --tasks "$tasks" "${started[@]}"
wait -n "${pids[@]}"
