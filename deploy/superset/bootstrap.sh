#!/bin/sh
# Superset start for deploy/docker-compose.yml: metadata DB, admin user, roles, then the
# shoplake bundle (database, datasets, charts, dashboard) imported and its database
# pointed at `serve` with the Flight SQL password, then the web server.
#
# Environment: SUPERSET_SECRET_KEY, SUPERSET_ADMIN_PASSWORD, SHOPLAKE_FLIGHT_HOST
# (host:port of `shoplake serve`), SHOPLAKE_SUPERSET_PASSWORD (the `superset` Flight SQL
# user's password; URL-encode it if it holds @ : / ? or #).
set -eu
superset db upgrade
superset fab create-admin --username admin --firstname Superset --lastname Admin \
  --email admin@example.com --password "${SUPERSET_ADMIN_PASSWORD}" || true
superset init
python - <<'PY'
import shutil
shutil.make_archive("/tmp/shoplake_superset", "zip", "/app/shoplake/bundle", "shoplake_dashboard")
PY
# On a restart the bundle is already there; a failed re-import must not stop Superset.
superset import-dashboards -p /tmp/shoplake_superset.zip -u admin ||
  echo "warning: importing the shoplake bundle failed (see above)" >&2
# The bundle's URI carries a masked password; set the real one (plaintext gRPC inside the
# compose network: insecure=true).
superset set-database-uri -d shoplake \
  -u "datafusion://superset:${SHOPLAKE_SUPERSET_PASSWORD}@${SHOPLAKE_FLIGHT_HOST}?insecure=true"
exec /usr/bin/run-server.sh
