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
        "gzip" | "x-gzip" => decompress_gzip(&raw, limit),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported; use gzip"
        ))),
    }
}

/// The gzip body `raw` decompressed, refused as soon as it passes `limit` bytes: at most
/// `limit + 1` bytes are ever decoded, however much the body claims to hold.
///
/// # Errors
/// 413 past the limit, 400 for a body that is not complete, valid gzip.
fn decompress_gzip(raw: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut decoded = Vec::new();
    // Every member, as gzip(1) reads a file: bytes after the first member are another member
    // (decoded and appended) or an error, never silently dropped.
    let mut reader = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    reader.read_to_end(&mut decoded).map_err(|e| ApiError::BadRequest {
        reason: format!("the gzip body cannot be decompressed: {e}"),
        field: None,
    })?;
    if decoded.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compress, Compression, Crc, FlushCompress};

    use super::*;

    #[test]
    fn concatenated_members_decode_whole_and_trailing_bytes_are_refused() {
        let mut two = gzip(b"[1,", 6);
        two.extend(gzip(b"2]", 6));
        assert_eq!(decompress_gzip(&two, 1 << 20).expect("two members"), Bytes::from_static(b"[1,2]"));
        let mut trailing = gzip(b"[1]", 6);
        trailing.extend_from_slice(b"junk after the gzip stream");
        assert!(matches!(decompress_gzip(&trailing, 1 << 20), Err(ApiError::BadRequest { .. })));
    }

    /// A gzip member header: deflate, no flags, no time, unknown system.
    const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

    fn gzip(body: &[u8], level: u32) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::new(level));
        encoder.write_all(body).expect("writing to memory");
        encoder.finish().expect("writing to memory")
    }

    /// A complete, valid gzip body of `blocks * block_bytes` zero bytes that is only about
    /// `blocks` KiB long: one block of zeros compressed after a full flush, so it refers to
    /// nothing before it, repeated `blocks` times.
    fn gzip_bomb(block_bytes: usize, blocks: u32) -> Vec<u8> {
        let zeros = vec![0u8; block_bytes];
        let mut deflate = Compress::new(Compression::best(), false);
        let mut block = Vec::with_capacity(block_bytes / 100 + 64);
        deflate.compress_vec(&zeros, &mut block, FlushCompress::Full).expect("compressing in memory");
        let mut last = Vec::with_capacity(16);
        deflate.compress_vec(&[], &mut last, FlushCompress::Finish).expect("compressing in memory");
        let mut block_crc = Crc::new();
        block_crc.update(&zeros);
        let mut crc = Crc::new();
        let mut bomb = GZIP_HEADER.to_vec();
        for _ in 0..blocks {
            bomb.extend_from_slice(&block);
            crc.combine(&block_crc);
        }
        bomb.extend_from_slice(&last);
        bomb.extend_from_slice(&crc.sum().to_le_bytes());
        bomb.extend_from_slice(&crc.amount().to_le_bytes());
        bomb
    }

    #[test]
    fn a_gzip_bomb_is_refused_after_decoding_one_byte_past_the_limit() {
        // 4 GiB of zeros in about 4 MiB: expanding it would take the memory and the time this
        // test does not have.
        let bomb = gzip_bomb(1 << 20, 4096);
        assert!(bomb.len() < 5 << 20, "{} bytes", bomb.len());
        let refused = decompress_gzip(&bomb, 1 << 20);
        assert!(matches!(refused, Err(ApiError::PayloadTooLarge { limit: 1_048_576 })), "{refused:?}");
    }

    /// Decompression fed what nobody checked: any bytes, gzip broken every way, bombs of any
    /// size. It gives the body within the limit or refuses it, and never panics.
    mod fuzz {
        use proptest::prelude::*;
        use sluice_fuzz::{Bytes, Corruption, corrupted};

        use super::*;

        fn is_refusal(error: &ApiError) -> bool {
            matches!(error, ApiError::BadRequest { field: None, .. } | ApiError::PayloadTooLarge { .. })
        }

        proptest! {
            #![proptest_config(sluice_fuzz::config())]

            #[test]
            fn any_bytes_decompress_within_the_limit_or_are_refused(
                tail in proptest::collection::vec(any::<u8>(), 0..512),
                with_header in any::<bool>(),
                limit in 0usize..1024,
            ) {
                // With a valid header the noise reaches the inflater instead of the magic check.
                let raw = Bytes(if with_header { [&GZIP_HEADER[..], &tail].concat() } else { tail });
                match decompress_gzip(&raw, limit) {
                    Ok(body) => prop_assert!(body.len() <= limit, "{} bytes from {raw:?}", body.len()),
                    Err(error) => prop_assert!(is_refusal(&error), "{error:?} from {raw:?}"),
                }
            }

            #[test]
            fn gzip_of_any_body_decompresses_to_it_unless_it_is_over_the_limit(
                body in proptest::collection::vec(any::<u8>(), 0..4096),
                level in 0u32..=9,
                limit_past_body in -64isize..64,
            ) {
                let limit = body.len().saturating_add_signed(limit_past_body);
                match decompress_gzip(&gzip(&body, level), limit) {
                    Ok(decoded) => prop_assert!(body.len() <= limit && decoded == body),
                    Err(ApiError::PayloadTooLarge { .. }) => prop_assert!(body.len() > limit),
                    Err(error) => prop_assert!(false, "{error:?}"),
                }
            }

            #[test]
            fn broken_gzip_is_refused_or_decodes_to_the_original_body(
                (body, sent, (raw, how)) in proptest::collection::vec(any::<u8>(), 0..2048).prop_flat_map(|body| {
                    let sent = gzip(&body, 6);
                    (Just(body), Just(sent.len()), corrupted(sent))
                }),
                limit in prop_oneof![Just(4096usize), 0usize..2048],
            ) {
                let decoded = decompress_gzip(&raw, limit);
                if let Corruption::Truncated(at) = how
                    && at > 0
                    && at < sent
                {
                    prop_assert!(decoded.is_err(), "cut at {at} of {sent}, yet accepted");
                }
                match decoded {
                    Ok(decoded) => {
                        prop_assert!(decoded.len() <= limit);
                        // Changes to header fields (time, system) or after the member do not
                        // matter, any other is caught by the CRC: what decodes is what was sent,
                        // or nothing when nothing was sent (then refused as an empty body).
                        prop_assert!(
                            decoded == body || (raw.is_empty() && decoded.is_empty()),
                            "{how:?} decoded to {} other bytes", decoded.len()
                        );
                    }
                    Err(error) => prop_assert!(is_refusal(&error), "{error:?} after {how:?}"),
                }
            }

            #[test]
            fn gzip_bombs_are_refused_once_past_the_limit(
                block_bytes in 1usize..=65_536,
                blocks in 1u32..64,
                limit in 0usize..=1 << 20,
            ) {
                let expanded = block_bytes * blocks as usize;
                match decompress_gzip(&gzip_bomb(block_bytes, blocks), limit) {
                    Ok(decoded) => {
                        prop_assert!(expanded <= limit, "{expanded} bytes let through a limit of {limit}");
                        prop_assert!(decoded.len() == expanded && decoded.iter().all(|&byte| byte == 0));
                    }
                    Err(ApiError::PayloadTooLarge { .. }) => prop_assert!(expanded > limit),
                    Err(error) => prop_assert!(false, "{error:?}"),
                }
            }
        }
    }
}
