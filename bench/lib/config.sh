# Sourced by bench/run.sh and bench/profile-webhook.sh: the sluice configuration both write.
# Expects $repo, $work and $run_id set, and the services' environment
# (`eval "$(scripts/services.sh env)"`).

# Writes a host config for one `sluice serve`: NAME PORT PLUGINS_DIR [EXTRA TOML].
# Prints the config path; pipelines go to the printed config's sibling dir `pipelines-NAME`.
host_config() {
    local name="$1" port="$2" plugins_dir="$3" extra="${4:-}"
    local config="$work/$name.toml"
    mkdir -p "$work/pipelines-$name"
    cat >"$config" <<TOML
[server]
listen = "127.0.0.1:$port"
shutdown_timeout_ms = 5000

[plugins]
dir = "$plugins_dir"
cache_dir = "$repo/.run/cache/plugins"
max_memory_mb = 1024
$extra

[plugins.defaults]
timeout_ms = 5000
memory_mb = 256

[pipelines]
dir = "$work/pipelines-$name"

[kafka]
brokers = "$SLUICE_KAFKA_BROKERS"

[s3]
endpoint = "$SLUICE_S3_ENDPOINT"
region = "$AWS_REGION"
force_path_style = true
TOML
    echo "$config"
}

webhook_pipeline() { # NAME PATH TOPIC TOLERANCE
    cat <<TOML
name = "$1"
[source]
kind = "webhook"
path = "$2"
topic = "$3"
group = "rsbench-$1-$run_id"
body_format = "json-array"
batch_records = 500
batch_max_ms = 1000

[source.signature]
scheme = "ecdsa-p256-sha256"
public_key_env = "SENDGRID_WEBHOOK_PUBLIC_KEY"
signature_header = "X-Twilio-Email-Event-Webhook-Signature"
timestamp_header = "X-Twilio-Email-Event-Webhook-Timestamp"
tolerance_secs = $4
TOML
}
