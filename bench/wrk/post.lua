-- Replays one fixed POST with wrk and prints its results as one JSON line.
--
-- Measures requests/s, p50/p99/max latency (ms), non-2xx answers and socket errors of a webhook
-- endpoint receiving the same body over and over (sluice's webhook source, or the bare-ingest
-- peer in bench/harness).
--
-- Environment (the `export` lines `sign-webhook` prints set all but WRK_LABEL):
--   WRK_BODY_FILE          the body to send (required)
--   WRK_SIGNATURE_HEADER   header that carries the signature, e.g.
--                          X-Twilio-Email-Event-Webhook-Signature (optional)
--   WRK_SIGNATURE          its value; sent only when both are set
--   WRK_TIMESTAMP_HEADER   header that carries the signing time (optional)
--   WRK_TIMESTAMP          its value; sent only when both are set
--   WRK_LABEL              a name put into the JSON line (optional)
--
-- Usage:
--   eval "$(sign-webhook --events 100 --out /tmp/rsbench-100.json)"
--   wrk -t2 -c32 -d10s --latency -s bench/wrk/post.lua http://127.0.0.1:8090/webhook
--
-- The JSON line: {"label", "requests", "duration_s", "requests_per_s", "body_bytes",
-- "p50_ms", "p99_ms", "max_ms", "non_2xx", "socket_errors": {connect, read, write, timeout}}.
-- `non_2xx` is wrk's count of answers with a status of 400 or more (no 3xx is expected here).

local function required_env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set; see the comment at the top of post.lua")
  end
  return value
end

local function optional_header(name_variable, value_variable)
  local name, value = os.getenv(name_variable), os.getenv(value_variable)
  if name ~= nil and name ~= "" and value ~= nil and value ~= "" then
    wrk.headers[name] = value
  end
end

local body_file = required_env("WRK_BODY_FILE")
local file = assert(io.open(body_file, "rb"), "cannot open WRK_BODY_FILE " .. body_file)
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
optional_header("WRK_SIGNATURE_HEADER", "WRK_SIGNATURE")
optional_header("WRK_TIMESTAMP_HEADER", "WRK_TIMESTAMP")

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    '{"label":%s,"requests":%d,"duration_s":%.3f,"requests_per_s":%.1f,"body_bytes":%d,'
      .. '"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    json_string(os.getenv("WRK_LABEL") or ""),
    summary.requests, seconds, summary.requests / seconds, #body,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
