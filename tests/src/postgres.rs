//! PostgreSQL connections for tests, optionally confined to one schema.

use tokio_postgres::{Client, Config, NoTls};

use crate::HarnessError;

/// `database_url` with its `search_path` set to `schema`, in the `options` query parameter
/// that libpq, tokio-postgres and sqlx all understand.
pub fn url_with_search_path(database_url: &str, schema: &str) -> String {
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}options=-csearch_path%3D{schema}")
}

/// Connects to `database_url` and drives the connection on the current runtime.
///
/// The connection lives as long as the returned client and the runtime; errors after the
/// connection is up surface on the next query.
///
/// # Errors
///
/// If the URL is invalid or the server refuses the connection.
pub async fn connect(database_url: &str) -> Result<Client, HarnessError> {
    let config: Config =
        database_url.parse().map_err(HarnessError::postgres(format!("parsing {database_url}")))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(HarnessError::postgres(format!("connecting to {database_url}")))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("sluice-e2e: postgres connection ended: {error}");
        }
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_is_added_to_the_url() {
        assert_eq!(
            url_with_search_path("postgres://u@h/db", "s"),
            "postgres://u@h/db?options=-csearch_path%3Ds"
        );
        assert_eq!(
            url_with_search_path("postgres://u@h/db?sslmode=disable", "s"),
            "postgres://u@h/db?sslmode=disable&options=-csearch_path%3Ds"
        );
    }
}
