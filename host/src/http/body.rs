//! Reading request bodies within a size limit, gzip included.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_ENCODING;

use super::ApiError;

/// The request body, decompressed when `Content-Encoding: gzip`, refused past `limit` bytes
/// (before and after decompression, so a small gzip bomb cannot expand without bound).
///
/// # Errors
/// 413 past the limit, 415 for an encoding other than gzip or identity, 400 for corrupt gzip.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let raw = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let encoding = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut decoded = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1);
            reader.read_to_end(&mut decoded).map_err(|e| ApiError::BadRequest {
                reason: format!("the gzip body cannot be decompressed: {e}"),
                field: None,
            })?;
            if decoded.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            Ok(Bytes::from(decoded))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported; use gzip"
        ))),
    }
}
