#!/usr/bin/env bash
# The user-status ETL demo against a running host (scripts/up.sh starts one and runs this):
# uploads a sample file to the services' S3, asks the host to load it, waits for the job and
# shows the three tables with psql.
#
# Usage: scripts/demo-etl.sh [FILE...]
#   FILE  user-status records in any shape the original system's files come in: one
#         pretty-printed object per file (the default: pipelines/samples/user_status_valid.json
#         and user_status_invalid.json, in the original's own format), concatenated objects,
#         JSON lines or a JSON array
# Environment: SLUICE_URL (http://127.0.0.1:8080), SLUICE_DEMO_BUCKET (sluice-demo); S3 keys and
# DATABASE_URL come from `scripts/services.sh env`.
#
# Each file is asked for with the original API's GET (answered 200), and the same file again
# gives the same job (a file version loads once); change it to load again.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$repo/scripts/services.sh" env)"
url="${SLUICE_URL:-http://127.0.0.1:8080}"
bucket="${SLUICE_DEMO_BUCKET:-sluice-demo}"
if [[ $# -eq 0 ]]; then
    set -- "$repo/pipelines/samples/user_status_valid.json" "$repo/pipelines/samples/user_status_invalid.json"
fi

die() {
    echo "demo-etl: $*" >&2
    exit 1
}

# A request signed for the services' S3 (curl's SigV4, no AWS CLI needed); prints the status.
s3() {
    curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }

for _ in $(seq 1 120); do
    curl -sf "$url/healthz" >/dev/null && break
    sleep 0.5
done
curl -sf "$url/healthz" >/dev/null || die "no host answers at $url (start it with scripts/up.sh)"

status="$(s3 -X PUT "$SLUICE_S3_ENDPOINT/$bucket")"
[[ "$status" == 200 || "$status" == 409 ]] || die "creating bucket $bucket answered $status"
load() {
    local file="$1" key answer job_id job state=""
    key="user-status/$(basename "$file")"
    status="$(s3 -T "$file" "$SLUICE_S3_ENDPOINT/$bucket/$key")"
    [[ "$status" == 200 ]] || die "uploading $file answered $status"
    echo "demo-etl: uploaded $file to s3://$bucket/$key"
    answer="$(curl -sS -w '\nHTTP %{http_code}' "$url/v1/jobs/user-status?bucket=$bucket&key=$key")"
    echo "demo-etl: GET /v1/jobs/user-status?bucket=$bucket&key=$key → $answer"
    job_id="$(json_field job_id <<<"${answer%$'\n'*}")"
    [[ -n "$job_id" ]] || die "the host did not accept the job"
    for _ in $(seq 1 240); do
        job="$(curl -sS "$url/v1/jobs/$job_id")"
        state="$(json_field state <<<"$job")"
        [[ "$state" == succeeded || "$state" == failed ]] && break
        sleep 0.25
    done
    echo "demo-etl: GET /v1/jobs/$job_id →"
    python3 -m json.tool <<<"$job"
    [[ "$state" == succeeded ]] || die "the job ended $state"
}

for file in "$@"; do
    load "$file"
done

if command -v psql >/dev/null; then
    psql "$DATABASE_URL" -X -P pager=off \
        -c 'SELECT userid, createdat, status, lastvisitedat, isblacklisted, ingested_at FROM user_status ORDER BY userid' \
        -c 'SELECT * FROM user_status_log ORDER BY userid, updatedon' \
        -c 'SELECT * FROM user_status_error_rec'
else
    echo "demo-etl: psql is not installed; the tables are in $DATABASE_URL"
fi
