//! Reaching PostgreSQL: the URL comes from the environment variable the host config names.

use tokio_postgres::{Client, Config, NoTls};

use crate::config::PostgresConfig;

/// Why PostgreSQL cannot be reached or a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "{env} is not set; set it to the PostgreSQL URL, e.g. postgres://user@127.0.0.1:5432/db \
         (append ?options=-csearch_path%3D<schema> to keep the tables in one schema)"
    )]
    MissingUrl { env: String },
    #[error("{env} is not a PostgreSQL URL: {source}")]
    InvalidUrl { env: String, source: tokio_postgres::Error },
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect { target: String, source: tokio_postgres::Error },
    #[error("PostgreSQL failed while {operation}: {source}")]
    Query { operation: String, source: tokio_postgres::Error },
    #[error("no PostgreSQL connection is open")]
    NotConnected,
}

impl DatabaseError {
    /// Wraps a statement's error with what the host was doing, for `map_err`.
    pub fn query(operation: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let operation = operation.into();
        move |source| DatabaseError::Query { operation, source }
    }
}

/// A PostgreSQL database: the parsed URL, ready to open connections.
///
/// Connections are opened per use rather than pooled: a job holds one per sink for its whole
/// run, and the job store's few statements per request do not justify a pool.
#[derive(Debug, Clone)]
pub struct Database {
    config: Config,
    target: String,
}

impl Database {
    /// The database named by the environment variable `postgres.url_env`.
    ///
    /// # Errors
    /// [`DatabaseError::MissingUrl`] when the variable is unset or empty,
    /// [`DatabaseError::InvalidUrl`] when it does not parse.
    pub fn from_env(config: &PostgresConfig) -> Result<Self, DatabaseError> {
        let env = config.url_env.clone();
        match std::env::var(&env) {
            Ok(url) if !url.trim().is_empty() => Self::from_url(&env, &url),
            _ => Err(DatabaseError::MissingUrl { env }),
        }
    }

    /// The database at `url`; `origin` names where the URL came from, for errors.
    ///
    /// # Errors
    /// [`DatabaseError::InvalidUrl`] when `url` does not parse.
    pub fn from_url(origin: &str, url: &str) -> Result<Self, DatabaseError> {
        let config: Config =
            url.parse().map_err(|source| DatabaseError::InvalidUrl { env: origin.to_owned(), source })?;
        // Host, port and database only: the URL may carry a password.
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!("{}:{port}/{}", hosts.join(","), config.get_dbname().unwrap_or_default());
        Ok(Database { config, target })
    }

    /// Opens a connection and drives it on the current runtime until the client is dropped.
    ///
    /// # Errors
    /// [`DatabaseError::Connect`] when the server cannot be reached or refuses the login.
    pub async fn connect(&self) -> Result<Client, DatabaseError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|source| DatabaseError::Connect { target: self.target.clone(), source })?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!("PostgreSQL connection ended: {error}");
            }
        });
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_leaves_the_password_out() {
        let database = Database::from_url(
            "DATABASE_URL",
            "postgres://ann:secret@db.example:6543/etl?options=-csearch_path%3Ds",
        )
        .expect("url");
        assert_eq!(database.target, "db.example:6543/etl");
    }

    #[test]
    fn a_bad_url_names_its_variable() {
        let error = Database::from_url("DATABASE_URL", "postgres://h:notaport/db").expect_err("bad port");
        assert!(error.to_string().starts_with("DATABASE_URL is not a PostgreSQL URL"), "{error}");
    }
}
