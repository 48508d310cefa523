#!/usr/bin/env bash
# Make sure the servers the suite needs are up: PostgreSQL, Redis and RabbitMQ (started before CI on
# these machines; restarted here if stopped), Chromium for the browser tests and poppler-utils for the
# report tests (both installed from Debian).
# A server started here gets no descriptor of the caller's: one holding CI's output pipe would keep
# CI waiting after the run has finished.
set -euo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start </dev/null >&2
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log </dev/null >/dev/null 2>&1
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  rabbitmq-server -detached </dev/null >/dev/null 2>&1
  for _ in $(seq 60); do rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 && break; sleep 1; done
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v pdftoppm >/dev/null; then
  echo "==> installing poppler-utils (pdftoppm) to render the report PDFs' pages in the tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
fi
