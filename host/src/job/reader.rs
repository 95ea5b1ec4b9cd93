//! Splits a JSON array or JSON lines stream into records, a batch at a time, holding at most
//! one batch and one partial record in memory however large the input is.
//!
//! The format is decided by the first byte that is not whitespace (a UTF-8 byte order mark is
//! skipped): `[` means one JSON array whose elements are the records, anything else means one
//! record per line (blank lines are skipped, a trailing `\r` is removed). The splitter only
//! finds record boundaries (strings, escapes and nesting); whether a record is valid JSON is
//! the plugin's to decide, so one bad record fails alone. What cannot be split — an array that
//! never closes, text after it, a record larger than the limit — fails the whole input.

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much is read from the input per call.
const READ_CHUNK: usize = 256 << 10;

/// Why the input could not be split into records.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the input failed at byte {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error("the input is not a JSON array or JSON lines: {problem} at byte {offset}")]
    Malformed { offset: u64, problem: &'static str },
    #[error("record {record} at byte {offset} is larger than the {limit} bytes allowed")]
    RecordTooLarge { record: u64, offset: u64, limit: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Unknown,
    Lines,
    Array(ArrayState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// After `[` or `,`: an element (or, right after `[`, the closing `]`) comes next.
    BeforeElement { first: bool },
    /// Inside an element; `depth` counts open brackets within it. The element ends at the
    /// first `,` or `]` outside strings and brackets, so two values without a comma between
    /// them become one (invalid) record for the plugin to refuse.
    InElement { depth: u32, in_string: bool, escaped: bool },
    /// After the closing `]`: only whitespace may follow.
    Closed,
}

/// Reads records from `input` in batches.
pub struct RecordReader<R> {
    input: R,
    buffer: Vec<u8>,
    /// Where scanning resumes in `buffer`.
    scan: usize,
    /// Where the record being scanned starts in `buffer`.
    record_start: Option<usize>,
    /// Input offset of `buffer[0]`.
    buffer_offset: u64,
    format: Format,
    eof: bool,
    records: u64,
    max_record_bytes: usize,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader refusing records longer than `max_record_bytes`, the bound on memory for one
    /// record.
    pub fn new(input: R, max_record_bytes: usize) -> Self {
        RecordReader {
            input,
            buffer: Vec::with_capacity(READ_CHUNK),
            scan: 0,
            record_start: None,
            buffer_offset: 0,
            format: Format::Unknown,
            eof: false,
            records: 0,
            max_record_bytes,
        }
    }

    /// Bytes of input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.buffer_offset + self.buffer.len() as u64
    }

    /// Records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Up to `max_records` records; an empty batch means the input is finished.
    ///
    /// # Errors
    /// [`ReadError`] when reading fails or the input cannot be split.
    pub async fn next_batch(&mut self, max_records: usize) -> Result<Vec<Vec<u8>>, ReadError> {
        let mut batch = Vec::with_capacity(max_records.min(1 << 16));
        while batch.len() < max_records {
            if let Some(record) = self.scan_record()? {
                self.records += 1;
                batch.push(record);
                continue;
            }
            if self.eof {
                self.finish()?;
                if let Some(record) = self.take_last_line() {
                    self.records += 1;
                    batch.push(record);
                }
                break;
            }
            self.fill().await?;
        }
        Ok(batch)
    }

    /// Reads the next chunk, first dropping what has been handed out.
    async fn fill(&mut self) -> Result<(), ReadError> {
        let keep_from = self.record_start.unwrap_or(self.scan);
        if keep_from > 0 {
            self.buffer.drain(..keep_from);
            self.buffer_offset += keep_from as u64;
            self.scan -= keep_from;
            self.record_start = self.record_start.map(|start| start - keep_from);
        }
        if let Some(start) = self.record_start
            && self.buffer.len() - start > self.max_record_bytes
        {
            return Err(ReadError::RecordTooLarge {
                record: self.records + 1,
                offset: self.buffer_offset + start as u64,
                limit: self.max_record_bytes,
            });
        }
        let before = self.buffer.len();
        self.buffer.resize(before + READ_CHUNK, 0);
        let read = self.input.read(&mut self.buffer[before..]).await;
        let read = match read {
            Ok(read) => read,
            Err(source) => {
                self.buffer.truncate(before);
                return Err(ReadError::Io { offset: self.bytes_read(), source });
            }
        };
        self.buffer.truncate(before + read);
        if read == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn offset(&self, position: usize) -> u64 {
        self.buffer_offset + position as u64
    }

    fn malformed(&self, position: usize, problem: &'static str) -> ReadError {
        ReadError::Malformed { offset: self.offset(position), problem }
    }

    /// The next complete record in the buffer, if there is one.
    fn scan_record(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        if self.format == Format::Unknown && !self.detect_format() {
            return Ok(None);
        }
        match self.format {
            Format::Lines => Ok(self.scan_line()),
            Format::Array(_) => self.scan_element(),
            Format::Unknown => Ok(None),
        }
    }

    /// Settles the format from the first non-whitespace byte; false while there is none yet.
    fn detect_format(&mut self) -> bool {
        const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";
        if self.offset(self.scan) == 0 {
            let start = &self.buffer[..self.buffer.len().min(BYTE_ORDER_MARK.len())];
            if start.len() < BYTE_ORDER_MARK.len() && BYTE_ORDER_MARK.starts_with(start) && !self.eof {
                return false;
            }
            if start == BYTE_ORDER_MARK {
                self.scan = BYTE_ORDER_MARK.len();
            }
        }
        while let Some(&byte) = self.buffer.get(self.scan) {
            if byte.is_ascii_whitespace() {
                self.scan += 1;
                continue;
            }
            self.format = if byte == b'[' {
                self.scan += 1;
                Format::Array(ArrayState::BeforeElement { first: true })
            } else {
                Format::Lines
            };
            return true;
        }
        false
    }

    fn scan_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let start = *self.record_start.get_or_insert(self.scan);
            let newline = self.buffer[self.scan..].iter().position(|&b| b == b'\n')?;
            let end = self.scan + newline;
            self.scan = end + 1;
            self.record_start = None;
            if let Some(record) = trimmed_line(&self.buffer[start..end]) {
                return Some(record.to_vec());
            }
        }
    }

    /// At the end of the input, the last line when it has no newline.
    fn take_last_line(&mut self) -> Option<Vec<u8>> {
        if self.format != Format::Lines {
            return None;
        }
        let start = self.record_start.take().unwrap_or(self.scan);
        self.scan = self.buffer.len();
        trimmed_line(&self.buffer[start..]).map(<[u8]>::to_vec)
    }

    fn scan_element(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        let Format::Array(mut state) = self.format else { return Ok(None) };
        let mut found = None;
        while found.is_none() {
            let Some(&byte) = self.buffer.get(self.scan) else { break };
            let position = self.scan;
            self.scan += 1;
            state = match state {
                ArrayState::BeforeElement { first } => match byte {
                    _ if byte.is_ascii_whitespace() => state,
                    b']' if first => ArrayState::Closed,
                    b']' | b',' => return Err(self.malformed(position, "an empty array element")),
                    _ => {
                        self.record_start = Some(position);
                        match byte {
                            b'"' => ArrayState::InElement { depth: 0, in_string: true, escaped: false },
                            b'{' | b'[' => {
                                ArrayState::InElement { depth: 1, in_string: false, escaped: false }
                            }
                            _ => ArrayState::InElement { depth: 0, in_string: false, escaped: false },
                        }
                    }
                },
                ArrayState::InElement { depth, in_string: true, escaped } => match byte {
                    _ if escaped => ArrayState::InElement { depth, in_string: true, escaped: false },
                    b'\\' => ArrayState::InElement { depth, in_string: true, escaped: true },
                    b'"' => ArrayState::InElement { depth, in_string: false, escaped: false },
                    _ => state,
                },
                ArrayState::InElement { depth, .. } => match byte {
                    b'"' => ArrayState::InElement { depth, in_string: true, escaped: false },
                    b'{' | b'[' => {
                        ArrayState::InElement { depth: depth + 1, in_string: false, escaped: false }
                    }
                    b'}' | b']' if depth > 0 => {
                        ArrayState::InElement { depth: depth - 1, in_string: false, escaped: false }
                    }
                    b',' | b']' if depth == 0 => {
                        let start = self.record_start.take().unwrap_or(position);
                        found = Some(self.buffer[start..position].trim_ascii_end().to_vec());
                        if byte == b',' {
                            ArrayState::BeforeElement { first: false }
                        } else {
                            ArrayState::Closed
                        }
                    }
                    b'}' => return Err(self.malformed(position, "a `}` that closes nothing")),
                    _ => state,
                },
                ArrayState::Closed if byte.is_ascii_whitespace() => state,
                ArrayState::Closed => return Err(self.malformed(position, "text after the closing `]`")),
            };
        }
        self.format = Format::Array(state);
        Ok(found)
    }

    /// Checks that the input ended where it may.
    fn finish(&self) -> Result<(), ReadError> {
        match self.format {
            Format::Array(ArrayState::Closed) | Format::Lines | Format::Unknown => Ok(()),
            Format::Array(_) => Err(self.malformed(self.buffer.len(), "the array is not closed")),
        }
    }
}

/// A line without its `\r`, or `None` when it is blank.
fn trimmed_line(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) { None } else { Some(line) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` in reads of `chunk` bytes, `batch` records at a time, and returns every
    /// record as text with the batch sizes.
    async fn split(input: &str, chunk: usize, batch: usize) -> Result<(Vec<String>, Vec<usize>), ReadError> {
        let reader = Chunked { data: input.as_bytes().to_vec(), position: 0, chunk };
        let mut records = RecordReader::new(reader, 1 << 20);
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let next = records.next_batch(batch).await?;
            if next.is_empty() {
                break;
            }
            sizes.push(next.len());
            all.extend(next.into_iter().map(|r| String::from_utf8(r).expect("utf-8")));
        }
        assert_eq!(records.bytes_read(), input.len() as u64);
        Ok((all, sizes))
    }

    /// An input that hands out at most `chunk` bytes per read, to cross every boundary.
    struct Chunked {
        data: Vec<u8>,
        position: usize,
        chunk: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let end = (self.position + self.chunk).min(self.data.len()).min(self.position + buf.remaining());
            buf.put_slice(&self.data[self.position..end]);
            self.position = end;
            std::task::Poll::Ready(Ok(()))
        }
    }

    const ARRAY: &str = " [ {\"a\":\"x,]}\\\"\"}, [1,[2]] ,\"s\\\\\" , 42,{\"b\":{\"c\":[]}} ]\n";

    #[tokio::test]
    async fn array_elements_split_at_top_level_commas_whatever_the_chunking() {
        let expected = ["{\"a\":\"x,]}\\\"\"}", "[1,[2]]", "\"s\\\\\"", "42", "{\"b\":{\"c\":[]}}"];
        for chunk in [1, 2, 3, 7, 1024] {
            let (records, _) = split(ARRAY, chunk, 100).await.expect("split");
            assert_eq!(records, expected, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn lines_skip_blanks_and_carriage_returns() {
        let input = "\u{feff}{\"a\":1}\r\n\n  \n{\"a\":2}\nnot json\n{\"a\":3}";
        for chunk in [1, 5, 1024] {
            let (records, _) = split(input, chunk, 100).await.expect("split");
            assert_eq!(records, ["{\"a\":1}", "{\"a\":2}", "not json", "{\"a\":3}"], "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn batches_hold_at_most_the_asked_number() {
        let input: String = (0..10).map(|n| format!("{{\"n\":{n}}}\n")).collect();
        let (records, sizes) = split(&input, 4, 3).await.expect("split");
        assert_eq!(records.len(), 10);
        assert_eq!(sizes, [3, 3, 3, 1]);
        let array = format!("[{}]", (0..10).map(|n| n.to_string()).collect::<Vec<_>>().join(","));
        let (records, sizes) = split(&array, 4, 4).await.expect("split");
        assert_eq!(records.len(), 10);
        assert_eq!(sizes, [4, 4, 2]);
    }

    #[tokio::test]
    async fn empty_inputs_have_no_records() {
        for input in ["", "  \n", "[]", " [ ] \n"] {
            let (records, _) = split(input, 2, 10).await.expect("split");
            assert!(records.is_empty(), "{input:?}");
        }
    }

    #[tokio::test]
    async fn unsplittable_arrays_fail_with_the_offset() {
        let cases = [
            ("[1,2", "the array is not closed at byte 4"),
            ("[1] x", "text after the closing `]` at byte 4"),
            ("[1,,2]", "an empty array element at byte 3"),
            ("[1,]", "an empty array element at byte 3"),
            ("[{\"a\":1}}]", "a `}` that closes nothing at byte 8"),
        ];
        for (input, expected) in cases {
            let error = split(input, 3, 10).await.expect_err(input);
            assert!(error.to_string().ends_with(expected), "{input}: {error}");
        }
    }

    #[tokio::test]
    async fn a_record_over_the_limit_fails_instead_of_growing_the_buffer() {
        let input = format!("{{\"a\":\"{}\"}}\n", "x".repeat(READ_CHUNK * 3));
        let reader = Chunked { data: input.into_bytes(), position: 0, chunk: READ_CHUNK };
        let mut records = RecordReader::new(reader, READ_CHUNK);
        let error = records.next_batch(10).await.expect_err("too large");
        assert!(matches!(error, ReadError::RecordTooLarge { record: 1, offset: 0, .. }), "{error}");
    }
}
