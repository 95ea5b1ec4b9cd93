//! Compressed objects: a job's input, or a dead-letter file, may be gzip or zstd. The
//! compression is told by the first bytes, not by the name or a `Content-Encoding` (which
//! S3 hands back as it was set, leaving the body as stored), and the input is decompressed
//! as it streams, so a compressed file is read in the same bounded memory as a plain one.

use std::pin::Pin;

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

/// gzip's member header (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// A zstd frame's magic number (RFC 8878), little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A byte stream as the job's reader takes it.
pub type Input = Pin<Box<dyn AsyncRead + Send>>;

/// What an input was compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// `input` decompressed (gzip or zstd, several members or frames one after another as `cat`
/// makes them), or as it is; and what it was compressed with.
///
/// # Errors
/// When the first bytes cannot be read. A corrupt stream fails later, where it is read.
pub async fn decompressed(mut input: Input) -> std::io::Result<(Compression, Input)> {
    let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
    let mut chunk = [0u8; ZSTD_MAGIC.len()];
    while head.len() < ZSTD_MAGIC.len() {
        let read = input.read(&mut chunk[..ZSTD_MAGIC.len() - head.len()]).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let compression = Compression::sniff(&head);
    let whole: Input = Box::pin(std::io::Cursor::new(head).chain(input));
    let decoded: Input = match compression {
        Compression::None => whole,
        Compression::Gzip => {
            let mut decoder = GzipDecoder::new(BufReader::new(whole));
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
        Compression::Zstd => {
            let mut decoder = ZstdDecoder::new(BufReader::new(whole));
            decoder.multiple_members(true);
            Box::pin(decoder)
        }
    };
    Ok((compression, decoded))
}

/// `bytes` decompressed when they are gzip or zstd, as they are otherwise.
///
/// # Errors
/// When the compressed stream is corrupt or cut short.
pub async fn decompress_bytes(bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if Compression::sniff(&bytes) == Compression::None {
        return Ok(bytes);
    }
    let (_, mut input) = decompressed(Box::pin(std::io::Cursor::new(bytes))).await?;
    let mut plain = Vec::new();
    input.read_to_end(&mut plain).await?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    async fn zstd(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = async_compression::tokio::write::ZstdEncoder::new(Vec::new());
        tokio::io::AsyncWriteExt::write_all(&mut encoder, bytes).await.expect("zstd");
        tokio::io::AsyncWriteExt::shutdown(&mut encoder).await.expect("zstd");
        encoder.into_inner()
    }

    /// A reader that hands out one byte per read, so the sniffing must gather the head
    /// across reads as it would from a slow network.
    struct Trickle(std::collections::VecDeque<u8>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _context: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(byte) = self.0.pop_front() {
                buf.put_slice(&[byte]);
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    async fn read(bytes: Vec<u8>) -> (Compression, std::io::Result<Vec<u8>>) {
        let (compression, mut input) = decompressed(Box::pin(Trickle(bytes.into()))).await.expect("head");
        let mut plain = Vec::new();
        let outcome = input.read_to_end(&mut plain).await.map(|_| plain);
        (compression, outcome)
    }

    #[tokio::test]
    async fn gzip_members_and_zstd_frames_one_after_another_are_read_whole() {
        let lines = b"{\"a\":1}\n{\"a\":2}\n".to_vec();
        let mut two_members = gzip(&lines[..8]);
        two_members.extend(gzip(&lines[8..]));
        let (compression, plain) = read(two_members).await;
        assert_eq!((compression, plain.expect("gzip")), (Compression::Gzip, lines.clone()));

        let mut two_frames = zstd(&lines[..8]).await;
        two_frames.extend(zstd(&lines[8..]).await);
        let (compression, plain) = read(two_frames).await;
        assert_eq!((compression, plain.expect("zstd")), (Compression::Zstd, lines));
    }

    #[tokio::test]
    async fn plain_and_tiny_inputs_pass_as_they_are() {
        for bytes in [b"".to_vec(), b"[".to_vec(), b"\x1f".to_vec(), b"{\"a\":1}".to_vec()] {
            let (compression, plain) = read(bytes.clone()).await;
            assert_eq!((compression, plain.expect("plain")), (Compression::None, bytes));
        }
    }

    #[tokio::test]
    async fn a_corrupt_or_cut_stream_is_an_error_not_a_short_file() {
        let text = b"{\"a\":1}\n".repeat(2000);
        let mut cut = gzip(&text);
        cut.truncate(cut.len() / 2);
        assert!(read(cut).await.1.is_err(), "cut gzip");
        // gzip checks a CRC of what it decoded.
        let mut corrupt = gzip(&text);
        let last = corrupt.len() - 5;
        corrupt[last] ^= 0xff;
        assert!(read(corrupt).await.1.is_err(), "corrupt gzip");
        let mut cut = zstd(&text).await;
        cut.truncate(cut.len() - 3);
        assert!(read(cut).await.1.is_err(), "cut zstd");
    }

    #[tokio::test]
    async fn decompress_bytes_leaves_plain_bytes_alone() {
        assert_eq!(decompress_bytes(b"plain".to_vec()).await.expect("plain"), b"plain");
        assert_eq!(decompress_bytes(gzip(b"zipped")).await.expect("gzip"), b"zipped");
    }
}
