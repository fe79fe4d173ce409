#!/usr/bin/env bash
# `make run`: from a fresh clone to a server with demo data. With REDIS_URL set,
# a Celery worker and beat run beside it; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"
BIN=.venv/bin

$BIN/python manage.py migrate --noinput
$BIN/python manage.py collectstatic --noinput --verbosity 0
$BIN/python manage.py load_demo

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop INT TERM EXIT

if [ -n "${REDIS_URL:-}" ]; then
  schedule_dir="$(mktemp -d)"
  $BIN/celery -A recovery_project worker --loglevel INFO --concurrency 2 &
  pids+=($!)
  $BIN/celery -A recovery_project beat --loglevel INFO --schedule "$schedule_dir/beat-schedule" &
  pids+=($!)
  echo "Celery worker and beat started (broker $REDIS_URL)" >&2
else
  echo "REDIS_URL is not set: tasks run eagerly inside the web process; periodic tasks run every 30 s" >&2
  $BIN/python manage.py run_periodic_tasks --every 30 &
  pids+=($!)
fi

echo "Serving on http://127.0.0.1:$PORT/  (API docs: /api/docs/, admin: /admin/). Ctrl-C stops everything." >&2
$BIN/python manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)
wait -n "${pids[@]}"
