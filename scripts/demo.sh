#!/usr/bin/env bash
# Feeds the demo pipelines of a running host (scripts/up.sh runs it once the host is up):
# posts the sample SendGrid webhook bodies, so the events table and its dead letters fill up
# within the pipeline's rotate_ms.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
url="${SLUICE_URL:-http://127.0.0.1:8080}"

echo "==> demo: posting sample SendGrid event webhooks to $url/v1/webhooks/sendgrid"
while IFS= read -r body; do
    [[ -n "$body" ]] || continue
    # Some samples are refused on purpose (not a JSON array): the answer is printed either way.
    curl --silent --show-error --write-out ' HTTP %{http_code}\n' -XPOST "$url/v1/webhooks/sendgrid" \
        -H 'content-type: application/json' --data-binary "$body"
done <"$repo/plugins/normalize-sendgrid-events/samples/input.jsonl"
echo "==> demo: rows appear under s3://sluice-demo/sendgrid/events/ within ~10 s (README: query with DuckDB)"
