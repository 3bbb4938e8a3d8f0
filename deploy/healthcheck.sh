#!/bin/sh
# Container health check of the shoplake image (HEALTHCHECK in deploy/Dockerfile).
#   default        GET http://127.0.0.1:8080/health: `run`, `worker`, `scheduler` serve it
#                  on [jobs] http_addr (the image's config: 0.0.0.0:8080).
#   HEALTH_URL=…   GET that URL instead: `serve`'s http://127.0.0.1:8081/health
#                  ([serve] http_addr), the sandbox's http://127.0.0.1:8090/healthz.
#   HEALTH_TCP=h:p connect to h:p instead: for a `serve` whose HTTP side is off
#                  ([serve] http_addr = ""), a TCP connect to its Flight SQL port.
# Exits 0 when healthy.
set -eu
if [ -n "${HEALTH_TCP:-}" ]; then
  host=${HEALTH_TCP%:*}
  port=${HEALTH_TCP##*:}
  exec timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port"
fi
exec curl -fsS --max-time 5 -o /dev/null "${HEALTH_URL:-http://127.0.0.1:8080/health}"
