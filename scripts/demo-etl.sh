#!/usr/bin/env bash
# The user-status ETL demo against a running host (scripts/up.sh starts one and runs this):
# uploads a sample file to the services' S3, asks the host to load it, waits for the job and
# shows the three tables with psql.
#
# Usage: scripts/demo-etl.sh [FILE]
#   FILE  JSON lines or a JSON array of user-status records
#         (default: plugins/validate-user-status/samples/input.jsonl: valid, invalid and
#         malformed records)
# Environment: SLUICE_URL (http://127.0.0.1:8080), SLUICE_DEMO_BUCKET (sluice-demo); S3 keys and
# DATABASE_URL come from `scripts/services.sh env`.
#
# The same file again gives the same job (a file version loads once); change it to load again.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$("$repo/scripts/services.sh" env)"
url="${SLUICE_URL:-http://127.0.0.1:8080}"
bucket="${SLUICE_DEMO_BUCKET:-sluice-demo}"
file="${1:-$repo/plugins/validate-user-status/samples/input.jsonl}"
key="user-status/$(basename "$file")"

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
status="$(s3 -T "$file" "$SLUICE_S3_ENDPOINT/$bucket/$key")"
[[ "$status" == 200 ]] || die "uploading $file answered $status"
echo "demo-etl: uploaded $file to s3://$bucket/$key"

answer="$(curl -sS -X POST "$url/v1/jobs/user-status" -H 'content-type: application/json' \
    -d "{\"bucket\": \"$bucket\", \"key\": \"$key\"}")"
echo "demo-etl: POST /v1/jobs/user-status → $answer"
job_id="$(json_field job_id <<<"$answer")"
[[ -n "$job_id" ]] || die "the host did not accept the job"

state=""
for _ in $(seq 1 240); do
    job="$(curl -sS "$url/v1/jobs/$job_id")"
    state="$(json_field state <<<"$job")"
    [[ "$state" == succeeded || "$state" == failed ]] && break
    sleep 0.25
done
echo "demo-etl: GET /v1/jobs/$job_id →"
python3 -m json.tool <<<"$job"
[[ "$state" == succeeded ]] || die "the job ended $state"

if command -v psql >/dev/null; then
    psql "$DATABASE_URL" -X -P pager=off \
        -c 'SELECT * FROM user_status ORDER BY "userId"' \
        -c 'SELECT * FROM user_status_log ORDER BY "userId", "updatedOn"' \
        -c 'SELECT * FROM user_status_error_rec'
else
    echo "demo-etl: psql is not installed; the tables are in $DATABASE_URL"
fi
