use std::io::Write;
use std::path::PathBuf;

use tokio::sync::OnceCell;

/// Endpoints and credentials of the running services, as printed by `scripts/services.sh env`.
///
/// It holds plain data only: every `#[tokio::test]` has its own runtime, and clients bound to
/// one runtime break in another, so clients are made per test by [`crate::TestScope`].
#[derive(Debug, Clone)]
pub struct Services {
    /// S3 endpoint URL, path-style, e.g. `http://127.0.0.1:8333`.
    pub s3_endpoint: String,
    /// A bucket that exists for the tests; each test works under its own prefix in it.
    pub s3_bucket: String,
    /// The access key SeaweedFS accepts.
    pub aws_access_key_id: String,
    /// The secret key SeaweedFS accepts; requests signed with anything else are refused.
    pub aws_secret_access_key: String,
    /// The region the signatures are made for.
    pub aws_region: String,
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`.
    pub kafka_brokers: String,
    /// PostgreSQL URL of the shared `test` database (no schema chosen).
    pub database_url: String,
    /// Every variable the script exports, in its order, for handing to a child process.
    pub env: Vec<(String, String)>,
}

static SERVICES: OnceCell<Result<Services, String>> = OnceCell::const_new();

impl Services {
    /// Starts the services once per test process and returns them, or `None` when they cannot
    /// start on a machine that is not CI.
    ///
    /// Every caller after the first gets the first outcome, so a failed start is reported by
    /// each test but attempted only once.
    ///
    /// # Panics
    ///
    /// When the services cannot start and `CI` is set to anything non-empty or
    /// `SLUICE_REQUIRE_SERVICES=1`: a skipped end-to-end suite must not pass CI.
    pub async fn get() -> Option<&'static Services> {
        match SERVICES.get_or_init(start).await {
            Ok(services) => Some(services),
            Err(reason) if services_required() => {
                panic!("services could not start (required in CI): {reason}")
            }
            Err(reason) => {
                announce_skip(reason);
                None
            }
        }
    }

    /// The `[kafka]` and `[s3]` sections of a host config pointing at these services: the one
    /// host config every test's host starts from (a test appends the sections it varies).
    pub fn host_config(&self) -> String {
        format!(
            "[kafka]\nbrokers = \"{}\"\n[s3]\nendpoint = \"{}\"\nregion = \"{}\"\nforce_path_style = true\n",
            self.kafka_brokers, self.s3_endpoint, self.aws_region
        )
    }

    /// The environment a host needs to sign its S3 requests with these services' credentials.
    pub fn host_env(&self) -> Vec<(&'static str, String)> {
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
            .into_iter()
            .filter_map(|name| {
                self.env.iter().find(|(key, _)| key == name).map(|(_, value)| (name, value.clone()))
            })
            .collect()
    }

    /// Path of the script that starts and stops the services.
    pub fn script() -> PathBuf {
        crate::artifacts::repo_root().join("scripts").join("services.sh")
    }

    fn from_env(env: Vec<(String, String)>) -> Result<Self, String> {
        let lookup = |key: &str| {
            env.iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| format!("`services.sh env` printed no {key}"))
        };
        Ok(Self {
            s3_endpoint: lookup("SLUICE_S3_ENDPOINT")?,
            s3_bucket: lookup("SLUICE_S3_BUCKET")?,
            aws_access_key_id: lookup("AWS_ACCESS_KEY_ID")?,
            aws_secret_access_key: lookup("AWS_SECRET_ACCESS_KEY")?,
            aws_region: lookup("AWS_REGION")?,
            kafka_brokers: lookup("SLUICE_KAFKA_BROKERS")?,
            database_url: lookup("DATABASE_URL")?,
            env,
        })
    }
}

fn services_required() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
        || std::env::var("SLUICE_REQUIRE_SERVICES").is_ok_and(|value| value == "1")
}

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and
/// a skipped test passes, so the banner would otherwise never be seen.
fn announce_skip(reason: &str) {
    let banner = format!(
        "\n==================== SKIPPING ====================\n\
         SKIPPING: services could not start: {reason}\n\
         Set CI=1 or SLUICE_REQUIRE_SERVICES=1 to make this a failure.\n\
         ==================================================\n"
    );
    // Nothing sensible is left to do if stderr itself is gone.
    let _ = std::io::stderr().write_all(banner.as_bytes());
}

async fn start() -> Result<Services, String> {
    run_script("start").await?;
    let printed = run_script("env").await?;
    Services::from_env(parse_exports(&printed)?)
}

async fn run_script(command: &str) -> Result<String, String> {
    let script = Services::script();
    let output = tokio::process::Command::new(&script)
        .arg(command)
        .output()
        .await
        .map_err(|error| format!("cannot run {} {command}: {error}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {command} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("{} {command} printed non-UTF-8 output", script.display()))
}

fn parse_exports(printed: &str) -> Result<Vec<(String, String)>, String> {
    printed
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.strip_prefix("export ")
                .and_then(|assignment| assignment.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.trim_matches('\'').to_owned()))
                .ok_or_else(|| format!("`services.sh env` printed an unexpected line: {line:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_parsed_in_order_and_unquoted() {
        let parsed = parse_exports("export A=1\n\nexport B='x=y'\n").expect("valid exports");
        assert_eq!(parsed, vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]);
    }

    #[test]
    fn a_line_without_export_is_rejected() {
        assert!(parse_exports("A=1").is_err());
    }

    #[test]
    fn a_missing_variable_is_named() {
        let error = Services::from_env(vec![]).expect_err("nothing exported");
        assert!(error.contains("SLUICE_S3_ENDPOINT"), "{error}");
    }
}
