//! Splits an input file into records, a batch at a time, holding at most one batch and one
//! partial record in memory however large the input is.
//!
//! Files come in three shapes, told apart by their content rather than their name because
//! the system this one replaces (AWS Glue's JSON classifier) accepted all three under any
//! name. A UTF-8 byte order mark and leading whitespace are skipped, then:
//! - `[` starts one JSON array whose elements are the records;
//! - `{` starts an object that is scanned to its balanced close: if it spans lines, or
//!   another value follows it on its line, the file is a stream of concatenated objects
//!   (each pretty-printed or not, separated by whitespace or nothing);
//! - anything else, or an object alone on its line, means JSON lines: one record per line,
//!   blank lines skipped, a trailing `\r` removed.
//!
//! The splitter only finds record boundaries (strings, escapes and nesting); whether a record
//! is valid JSON is the plugin's to decide, so one bad record fails alone. Among concatenated
//! objects, text that does not start an object or array is a record running to the end of
//! its line, and an object still open at the end of the input is a last record, so garbage
//! becomes dead letters instead of swallowing the rest of the file. What cannot be split — an
//! array that never closes, text after it, a record larger than the limit — fails the whole
//! input.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much is read from the input per call.
const READ_CHUNK: usize = 256 << 10;

/// Why the input could not be split into records.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the input failed at byte {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error(
        "the input starts as a JSON array but cannot be split into its elements: {problem} at byte {offset}"
    )]
    Malformed { offset: u64, problem: &'static str },
    #[error("record {record} at byte {offset} is larger than the {limit} bytes allowed")]
    RecordTooLarge { record: u64, offset: u64, limit: usize },
}

/// How the records of an input are laid out, as detected from its first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One record per line.
    JsonLines,
    /// One JSON array whose elements are the records.
    Array,
    /// Objects one after another, each on as many lines as it likes.
    ConcatenatedObjects,
}

impl fmt::Display for Shape {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Shape::JsonLines => "JSON lines",
            Shape::Array => "a JSON array",
            Shape::ConcatenatedObjects => "concatenated JSON objects",
        })
    }
}

/// One record as it appears in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Where the record's first byte is in the input, counting a byte order mark, so a
    /// refused record can be found in the file.
    pub offset: u64,
    /// The record's bytes as they appear in the input, without the line ending or separator
    /// after it.
    pub bytes: Vec<u8>,
}

/// Where a scan is within one JSON value: how many brackets are open and whether it is in a
/// string. Brackets inside strings do not count, and `\` in a string escapes the next byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Nesting {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Nesting {
    /// Before a value's first byte.
    const OUTSIDE: Nesting = Nesting { depth: 0, in_string: false, escaped: false };

    fn step(self, byte: u8) -> Nesting {
        if self.in_string {
            return match byte {
                _ if self.escaped => Nesting { escaped: false, ..self },
                b'\\' => Nesting { escaped: true, ..self },
                b'"' => Nesting { in_string: false, ..self },
                _ => self,
            };
        }
        match byte {
            b'"' => Nesting { in_string: true, ..self },
            b'{' | b'[' => Nesting { depth: self.depth.saturating_add(1), ..self },
            b'}' | b']' => Nesting { depth: self.depth.saturating_sub(1), ..self },
            _ => self,
        }
    }

    /// Outside every string and bracket: an object or array that started here has closed.
    fn is_outside(self) -> bool {
        self.depth == 0 && !self.in_string
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The shape is not known yet; `Some` once the first value, an object, starts at `scan`.
    Detecting(Option<Probe>),
    Lines,
    Array(ArrayState),
    Objects(ObjectsState),
}

/// How far detection has looked into the first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    /// Bytes after `scan` already looked at.
    scanned: usize,
    /// Outside once the value has closed and the rest of its line is being looked at.
    nesting: Nesting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// After `[` or `,`: an element (or, right after `[`, the closing `]`) comes next.
    BeforeElement { first: bool },
    /// Inside an element. It ends at the first `,` or `]` outside strings and brackets, so two
    /// values without a comma between them become one (invalid) record for the plugin to
    /// refuse.
    InElement(Nesting),
    /// After the closing `]`: only whitespace may follow.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectsState {
    /// Whitespace between records is skipped.
    BetweenValues,
    /// Inside an object or array, which ends at its balanced close.
    InValue(Nesting),
    /// Inside text that does not start an object or array, which ends with its line.
    InLine,
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
    mode: Mode,
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
            mode: Mode::Detecting(None),
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

    /// The shape of the input; `None` until it is known, and for an input with no records.
    pub fn shape(&self) -> Option<Shape> {
        match self.mode {
            Mode::Detecting(_) => None,
            Mode::Lines => Some(Shape::JsonLines),
            Mode::Array(_) => Some(Shape::Array),
            Mode::Objects(_) => Some(Shape::ConcatenatedObjects),
        }
    }

    /// Up to `max_records` records; an empty batch means the input is finished.
    ///
    /// # Errors
    /// [`ReadError`] when reading fails or the input cannot be split.
    pub async fn next_batch(&mut self, max_records: usize) -> Result<Vec<ReadRecord>, ReadError> {
        let mut batch = Vec::with_capacity(max_records.min(1 << 16));
        while batch.len() < max_records {
            if let Some(record) = self.scan_record()? {
                batch.push(self.hand_out(record)?);
                continue;
            }
            if self.eof {
                if let Some(record) = self.take_last()? {
                    batch.push(self.hand_out(record)?);
                }
                break;
            }
            self.fill().await?;
        }
        Ok(batch)
    }

    /// Counts a complete record, refusing it when it is over the limit. [`Self::fill`] refuses
    /// a record still growing past the limit; this catches one that arrived whole within a
    /// single read, so the outcome does not depend on how the input is chunked.
    fn hand_out(&mut self, record: ReadRecord) -> Result<ReadRecord, ReadError> {
        if record.bytes.len() > self.max_record_bytes {
            return Err(ReadError::RecordTooLarge {
                record: self.records + 1,
                offset: record.offset,
                limit: self.max_record_bytes,
            });
        }
        self.records += 1;
        Ok(record)
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
                offset: self.offset(start),
                limit: self.max_record_bytes,
            });
        }
        // Reading into spare capacity, rather than a zeroed chunk, keeps small reads cheap.
        self.buffer.reserve(READ_CHUNK);
        match self.input.read_buf(&mut self.buffer).await {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(source) => return Err(ReadError::Io { offset: self.bytes_read(), source }),
        }
        Ok(())
    }

    fn offset(&self, position: usize) -> u64 {
        self.buffer_offset + position as u64
    }

    fn malformed(&self, position: usize, problem: &'static str) -> ReadError {
        ReadError::Malformed { offset: self.offset(position), problem }
    }

    /// The record that started at `record_start` and ends before `end`, trailing whitespace
    /// removed.
    fn take_record(&mut self, end: usize) -> ReadRecord {
        let start = self.record_start.take().unwrap_or(end);
        ReadRecord { offset: self.offset(start), bytes: self.buffer[start..end].trim_ascii_end().to_vec() }
    }

    /// The next complete record in the buffer, if there is one.
    fn scan_record(&mut self) -> Result<Option<ReadRecord>, ReadError> {
        if !self.detect_shape() {
            return Ok(None);
        }
        match self.mode {
            Mode::Lines => Ok(self.scan_line()),
            Mode::Array(state) => {
                let (state, found) = self.scan_bytes(state, Self::step_element)?;
                self.mode = Mode::Array(state);
                Ok(found)
            }
            Mode::Objects(state) => {
                let (state, found) = self.scan_bytes(state, |reader, state, byte, position| {
                    Ok(reader.step_object(state, byte, position))
                })?;
                self.mode = Mode::Objects(state);
                Ok(found)
            }
            Mode::Detecting(_) => Ok(None),
        }
    }

    /// Settles the shape from the first value (see the module documentation); false while
    /// more input is needed.
    fn detect_shape(&mut self) -> bool {
        let Mode::Detecting(probe) = self.mode else { return true };
        let mut probe = match probe {
            Some(probe) => probe,
            None => {
                let Some(first) = self.skip_to_first_value() else { return false };
                match first {
                    b'[' => {
                        self.scan += 1;
                        self.mode = Mode::Array(ArrayState::BeforeElement { first: true });
                        return true;
                    }
                    b'{' => {
                        // Kept in the buffer, and within the record limit, while it is probed.
                        self.record_start = Some(self.scan);
                        Probe { scanned: 1, nesting: Nesting::OUTSIDE.step(first) }
                    }
                    _ => {
                        self.mode = Mode::Lines;
                        return true;
                    }
                }
            }
        };
        let objects = loop {
            let Some(&byte) = self.buffer.get(self.scan + probe.scanned) else {
                if self.eof {
                    // One line, or an object that never closes: a single record either way.
                    break false;
                }
                self.mode = Mode::Detecting(Some(probe));
                return false;
            };
            probe.scanned += 1;
            if !probe.nesting.is_outside() {
                if byte == b'\n' {
                    break true;
                }
                probe.nesting = probe.nesting.step(byte);
            } else if byte == b'\n' {
                break false;
            } else if !byte.is_ascii_whitespace() {
                break true;
            }
        };
        // Scanning starts again at the first value, now in the settled shape.
        self.record_start = None;
        self.mode = if objects { Mode::Objects(ObjectsState::BetweenValues) } else { Mode::Lines };
        true
    }

    /// Skips a byte order mark and whitespace at the start of the input; the first other byte,
    /// at `scan`, once there is one.
    fn skip_to_first_value(&mut self) -> Option<u8> {
        const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";
        if self.offset(self.scan) == 0 {
            let start = &self.buffer[..self.buffer.len().min(BYTE_ORDER_MARK.len())];
            if start.len() < BYTE_ORDER_MARK.len() && BYTE_ORDER_MARK.starts_with(start) && !self.eof {
                return None;
            }
            if start == BYTE_ORDER_MARK {
                self.scan = BYTE_ORDER_MARK.len();
            }
        }
        while let Some(&byte) = self.buffer.get(self.scan) {
            if !byte.is_ascii_whitespace() {
                return Some(byte);
            }
            self.scan += 1;
        }
        None
    }

    fn scan_line(&mut self) -> Option<ReadRecord> {
        loop {
            let start = *self.record_start.get_or_insert(self.scan);
            let Some(newline) = self.buffer[self.scan..].iter().position(|&b| b == b'\n') else {
                // The partial line stays from `record_start`; it is not scanned again.
                self.scan = self.buffer.len();
                return None;
            };
            let end = self.scan + newline;
            self.scan = end + 1;
            self.record_start = None;
            if let Some(line) = trimmed_line(&self.buffer[start..end]) {
                return Some(ReadRecord { offset: self.offset(start), bytes: line.to_vec() });
            }
        }
    }

    /// At the end of the input, the record it ends in, if any.
    ///
    /// # Errors
    /// [`ReadError::Malformed`] when an array is not closed.
    fn take_last(&mut self) -> Result<Option<ReadRecord>, ReadError> {
        let end = self.buffer.len();
        match self.mode {
            Mode::Lines => {
                let start = self.record_start.take().unwrap_or(self.scan);
                self.scan = end;
                let line = trimmed_line(&self.buffer[start..end]);
                Ok(line.map(|line| ReadRecord { offset: self.offset(start), bytes: line.to_vec() }))
            }
            Mode::Objects(ObjectsState::InValue(_) | ObjectsState::InLine) => {
                self.scan = end;
                self.mode = Mode::Objects(ObjectsState::BetweenValues);
                Ok(Some(self.take_record(end)))
            }
            Mode::Array(ArrayState::BeforeElement { .. } | ArrayState::InElement(_)) => {
                Err(self.malformed(end, "the array is not closed"))
            }
            Mode::Array(ArrayState::Closed)
            | Mode::Objects(ObjectsState::BetweenValues)
            | Mode::Detecting(_) => Ok(None),
        }
    }

    /// Feeds the unscanned bytes one at a time, with their position, to `step`, which returns
    /// the next state and the record the byte completes; stops after a record or at the end of
    /// the buffer.
    fn scan_bytes<S>(
        &mut self,
        mut state: S,
        mut step: impl FnMut(&mut Self, S, u8, usize) -> Result<(S, Option<ReadRecord>), ReadError>,
    ) -> Result<(S, Option<ReadRecord>), ReadError> {
        while let Some(&byte) = self.buffer.get(self.scan) {
            let position = self.scan;
            self.scan += 1;
            let (next, found) = step(self, state, byte, position)?;
            state = next;
            if found.is_some() {
                return Ok((state, found));
            }
        }
        Ok((state, None))
    }

    fn step_element(
        &mut self,
        state: ArrayState,
        byte: u8,
        position: usize,
    ) -> Result<(ArrayState, Option<ReadRecord>), ReadError> {
        let next = match state {
            ArrayState::BeforeElement { first } => match byte {
                _ if byte.is_ascii_whitespace() => state,
                b']' if first => ArrayState::Closed,
                b']' | b',' => return Err(self.malformed(position, "an empty array element")),
                _ => {
                    self.record_start = Some(position);
                    ArrayState::InElement(Nesting::OUTSIDE.step(byte))
                }
            },
            ArrayState::InElement(nesting) if nesting.is_outside() => match byte {
                b',' | b']' => {
                    let next = if byte == b',' {
                        ArrayState::BeforeElement { first: false }
                    } else {
                        ArrayState::Closed
                    };
                    return Ok((next, Some(self.take_record(position))));
                }
                b'}' => return Err(self.malformed(position, "a `}` that closes nothing")),
                _ => ArrayState::InElement(nesting.step(byte)),
            },
            ArrayState::InElement(nesting) => ArrayState::InElement(nesting.step(byte)),
            ArrayState::Closed if byte.is_ascii_whitespace() => state,
            ArrayState::Closed => return Err(self.malformed(position, "text after the closing `]`")),
        };
        Ok((next, None))
    }

    fn step_object(
        &mut self,
        state: ObjectsState,
        byte: u8,
        position: usize,
    ) -> (ObjectsState, Option<ReadRecord>) {
        let next = match state {
            ObjectsState::BetweenValues if byte.is_ascii_whitespace() => state,
            ObjectsState::BetweenValues => {
                self.record_start = Some(position);
                if matches!(byte, b'{' | b'[') {
                    ObjectsState::InValue(Nesting::OUTSIDE.step(byte))
                } else {
                    ObjectsState::InLine
                }
            }
            ObjectsState::InValue(nesting) => match nesting.step(byte) {
                nesting if nesting.is_outside() => {
                    return (ObjectsState::BetweenValues, Some(self.take_record(position + 1)));
                }
                nesting => ObjectsState::InValue(nesting),
            },
            ObjectsState::InLine if byte == b'\n' => {
                return (ObjectsState::BetweenValues, Some(self.take_record(position)));
            }
            ObjectsState::InLine => state,
        };
        (next, None)
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

    /// Read sizes every test runs with, from one byte per read to whole inputs at once.
    const CHUNKS: [usize; 6] = [1, 2, 3, 7, 64, 1024];

    /// What [`split`] found.
    #[derive(Debug)]
    struct Split {
        records: Vec<String>,
        offsets: Vec<u64>,
        batch_sizes: Vec<usize>,
        shape: Option<Shape>,
    }

    /// Reads `input` in reads of `chunk` bytes, `batch` records at a time, checking that every
    /// record's offset points at its bytes in the input.
    async fn split(input: &str, chunk: usize, batch: usize) -> Result<Split, ReadError> {
        let reader = Chunked { data: input.as_bytes().to_vec(), position: 0, chunk };
        let mut reader = RecordReader::new(reader, 1 << 20);
        let mut split =
            Split { records: Vec::new(), offsets: Vec::new(), batch_sizes: Vec::new(), shape: None };
        loop {
            let next = reader.next_batch(batch).await?;
            if next.is_empty() {
                break;
            }
            split.batch_sizes.push(next.len());
            for record in next {
                let start = usize::try_from(record.offset).expect("offset");
                assert_eq!(
                    input.as_bytes().get(start..start + record.bytes.len()),
                    Some(&record.bytes[..]),
                    "record at byte {start} of {input:?}, chunk {chunk}"
                );
                split.offsets.push(record.offset);
                split.records.push(String::from_utf8(record.bytes).expect("utf-8"));
            }
        }
        assert_eq!(reader.bytes_read(), input.len() as u64);
        assert_eq!(reader.records(), split.records.len() as u64);
        split.shape = reader.shape();
        Ok(split)
    }

    /// Splits `input` with every read size, checks each gives the same records, and returns
    /// them.
    async fn split_all_ways(input: &str) -> Split {
        let whole = split(input, input.len().max(1), usize::MAX).await.expect("split");
        for chunk in CHUNKS {
            let chunked = split(input, chunk, 3).await.expect("split");
            assert_eq!(chunked.records, whole.records, "chunk {chunk}");
            assert_eq!(chunked.offsets, whole.offsets, "chunk {chunk}");
            assert_eq!(chunked.shape, whole.shape, "chunk {chunk}");
        }
        whole
    }

    /// Checks that `input`, read as `shape`, splits into `expected`, each record found where
    /// it first appears after the one before.
    async fn assert_splits_into(input: &str, expected: &[&str], shape: Shape) -> Split {
        let split = split_all_ways(input).await;
        assert_eq!(split.records, expected, "{input:?}");
        assert_eq!(split.offsets, offsets_in(input, expected), "{input:?}");
        assert_eq!(split.shape, Some(shape), "{input:?}");
        split
    }

    /// Where each of `records` is in `input`, searching on from the previous one.
    fn offsets_in(input: &str, records: &[&str]) -> Vec<u64> {
        let mut from = 0;
        records
            .iter()
            .map(|record| {
                let at = from + input[from..].find(record).expect("record in input");
                from = at + record.len();
                at as u64
            })
            .collect()
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

    /// The shape of many exported files: one pretty-printed object, nested, with nulls.
    const SAMPLE: &str = r#"{
    "id": null,
    "opened": null,
    "seen": null,
    "state": "",
    "history": [
        {
            "state": "NEW",
            "at": 1644527391
        }
    ],
    "closed": false
 }"#;

    #[tokio::test]
    async fn array_elements_split_at_top_level_commas_whatever_the_chunking() {
        let expected = ["{\"a\":\"x,]}\\\"\"}", "[1,[2]]", "\"s\\\\\"", "42", "{\"b\":{\"c\":[]}}"];
        assert_splits_into(ARRAY, &expected, Shape::Array).await;
    }

    #[tokio::test]
    async fn pretty_printed_array_elements_start_where_they_are_in_the_file() {
        let input =
            format!("\u{feff}[\n  {},\n  {{\"b\": \"]\"}}  ,\n\n  7\n]\n", SAMPLE.replace('\n', "\n  "));
        let split = split_all_ways(&input).await;
        assert_eq!(split.records.len(), 3);
        let sample: serde_json::Value = serde_json::from_str(SAMPLE).expect("sample");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&split.records[0]).expect("json"), sample);
        assert_eq!(split.records[1..], ["{\"b\": \"]\"}", "7"]);
        assert_eq!(split.offsets[0], 3 + 4);
        assert_eq!(split.offsets[1..], offsets_in(&input, &["{\"b\"", "7"]));
        assert_eq!(split.shape, Some(Shape::Array));
    }

    #[tokio::test]
    async fn lines_skip_blanks_and_carriage_returns() {
        let input = "\u{feff}{\"a\":1}\r\n\n  \n{\"a\":2}\nnot json\n{\"a\":3}";
        let split = split_all_ways(input).await;
        assert_eq!(split.records, ["{\"a\":1}", "{\"a\":2}", "not json", "{\"a\":3}"]);
        assert_eq!(split.offsets, [3, 16, 24, 33]);
        assert_eq!(split.shape, Some(Shape::JsonLines));
    }

    #[tokio::test]
    async fn garbage_lines_among_json_lines_are_records_of_their_own() {
        let input = "{\"a\":1}\nnot json at all\n42\n  {\"a\":\n{\"a\":2}\n";
        let split = split_all_ways(input).await;
        let expected = ["{\"a\":1}", "not json at all", "42", "  {\"a\":", "{\"a\":2}"];
        assert_eq!(split.records, expected);
        assert_eq!(split.offsets, [0, 8, 24, 27, 35]);
        assert_eq!(split.shape, Some(Shape::JsonLines));
    }

    #[tokio::test]
    async fn one_pretty_printed_object_is_one_record() {
        let sample: serde_json::Value = serde_json::from_str(SAMPLE).expect("sample");
        for (prefix, suffix) in
            [("", ""), ("\u{feff}", ""), ("", "\n"), ("\u{feff}", "  \r\n\n"), ("\n ", "\n")]
        {
            let input = format!("{prefix}{SAMPLE}{suffix}");
            let split = split_all_ways(&input).await;
            assert_eq!(split.records, [SAMPLE], "{input:?}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&split.records[0]).expect("json"), sample);
            assert_eq!(split.offsets, [prefix.len() as u64], "{input:?}");
            assert_eq!(split.shape, Some(Shape::ConcatenatedObjects), "{input:?}");
        }
    }

    #[tokio::test]
    async fn concatenated_objects_end_at_their_balanced_close() {
        let tricky = r#"{"s": "{ \" } [", "t": "a\nb\\", "u": {"v": [1, {"w": "]"}]}}"#;
        let pretty = "{\n  \"b\": [\n    2\n  ]\n}";
        let cases: [(String, Vec<&str>); 4] = [
            (format!("{SAMPLE}\n{SAMPLE}\n\n{SAMPLE}"), vec![SAMPLE, SAMPLE, SAMPLE]),
            (format!("{SAMPLE}{pretty}  {SAMPLE}\n"), vec![SAMPLE, pretty, SAMPLE]),
            (
                format!("{{\"a\":1}}{{\"a\":2}}\n{{\"a\":3}} {tricky}"),
                vec!["{\"a\":1}", "{\"a\":2}", "{\"a\":3}", tricky],
            ),
            (format!("{tricky}{pretty}\r\n[1,\n 2]{{}}"), vec![tricky, pretty, "[1,\n 2]", "{}"]),
        ];
        for (input, expected) in cases {
            let split = assert_splits_into(&input, &expected, Shape::ConcatenatedObjects).await;
            for record in &split.records {
                serde_json::from_str::<serde_json::Value>(record).expect("each record is JSON");
            }
        }
    }

    #[tokio::test]
    async fn garbage_among_objects_and_an_unclosed_last_object_are_records_of_their_own() {
        let input =
            "{\n \"a\": 1\n}\nnot json at all\n42 {\"x\"\n{\"b\":\n 2}garbage  \r\n ] \n{\n \"c\": [1,\n";
        let expected = [
            "{\n \"a\": 1\n}",
            "not json at all",
            "42 {\"x\"",
            "{\"b\":\n 2}",
            "garbage",
            "]",
            "{\n \"c\": [1,",
        ];
        assert_splits_into(input, &expected, Shape::ConcatenatedObjects).await;
    }

    #[tokio::test]
    async fn the_shape_comes_from_the_first_value() {
        let cases = [
            ("{\"a\":1}\n{\"a\":2}\n", Shape::JsonLines),
            ("{\"a\":1}", Shape::JsonLines),
            ("{\"a\":1} \t\r\n{\n\"a\":2}", Shape::JsonLines),
            ("{\"a\":\"x\\\"}\"}\n", Shape::JsonLines),
            ("{\"a\":1", Shape::JsonLines),
            ("\"text\"\n", Shape::JsonLines),
            ("42\n{\n}", Shape::JsonLines),
            ("\u{feff} not json\n", Shape::JsonLines),
            ("{\"a\":1}{\"a\":2}", Shape::ConcatenatedObjects),
            ("{\"a\":1} {\"a\":2}\n", Shape::ConcatenatedObjects),
            ("{\"a\":1} trailing\n", Shape::ConcatenatedObjects),
            ("{\n}", Shape::ConcatenatedObjects),
            ("\u{feff}\n  {\"a\":\n1}", Shape::ConcatenatedObjects),
            ("{\"a\":1\n", Shape::ConcatenatedObjects),
            ("[1]", Shape::Array),
            ("\u{feff}\r\n [\n]", Shape::Array),
        ];
        for (input, shape) in cases {
            assert_eq!(split_all_ways(input).await.shape, Some(shape), "{input:?}");
        }
    }

    #[tokio::test]
    async fn shapes_read_as_people_call_them() {
        assert_eq!(Shape::JsonLines.to_string(), "JSON lines");
        assert_eq!(Shape::Array.to_string(), "a JSON array");
        assert_eq!(Shape::ConcatenatedObjects.to_string(), "concatenated JSON objects");
    }

    #[tokio::test]
    async fn batches_hold_at_most_the_asked_number() {
        let lines: String = (0..10).map(|n| format!("{{\"n\":{n}}}\n")).collect();
        let array = format!("[{}]", (0..10).map(|n| n.to_string()).collect::<Vec<_>>().join(","));
        let objects: String = (0..10).map(|n| format!("{{\n\"n\":{n}}}")).collect();
        for chunk in CHUNKS {
            let cases: [(&str, usize, &[usize]); 3] =
                [(&lines, 3, &[3, 3, 3, 1]), (&array, 4, &[4, 4, 2]), (&objects, 3, &[3, 3, 3, 1])];
            for (input, batch, sizes) in cases {
                let split = split(input, chunk, batch).await.expect("split");
                assert_eq!(split.records.len(), 10, "chunk {chunk}: {input:?}");
                assert_eq!(split.batch_sizes, sizes, "chunk {chunk}: {input:?}");
            }
        }
    }

    #[tokio::test]
    async fn empty_inputs_have_no_records_and_no_shape() {
        for input in ["", "  \n", "\u{feff}", "\u{feff} \r\n", "[]", " [ ] \n"] {
            let split = split_all_ways(input).await;
            assert!(split.records.is_empty(), "{input:?}");
            let shape = if input.contains('[') { Some(Shape::Array) } else { None };
            assert_eq!(split.shape, shape, "{input:?}");
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
            ("[{\"a\":\n1}\n]{}", "text after the closing `]` at byte 11"),
        ];
        for chunk in CHUNKS {
            for (input, expected) in cases {
                let error = split(input, chunk, 10).await.expect_err(input);
                assert!(error.to_string().ends_with(expected), "{input}, chunk {chunk}: {error}");
            }
        }
    }

    #[tokio::test]
    async fn a_record_over_the_limit_fails_however_the_input_is_chunked() {
        // Found by the fuzz tests: a long record that arrived within one read used to pass.
        for chunk in [1, 4, 64, 1024] {
            let input = Chunked { data: b"abcdefgh\n{\"a\":1}\n".to_vec(), position: 0, chunk };
            let error = RecordReader::new(input, 4).next_batch(10).await.expect_err("too large");
            assert!(
                matches!(error, ReadError::RecordTooLarge { record: 1, offset: 0, limit: 4 }),
                "{chunk}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn a_record_over_the_limit_fails_instead_of_growing_the_buffer() {
        let long = "x".repeat(READ_CHUNK * 3);
        let inputs = [
            format!("{{\"a\":1}}\n{{\"a\":\"{long}\"}}\n"),
            format!("[1, {{\"a\":\"{long}\"}}]"),
            format!("{{\n\"a\":1}}\n{{\n\"a\":\"{long}\"}}"),
            format!("{{\"a\":\"{long}\"\n}}"),
        ];
        for chunk in [1, 1000, READ_CHUNK] {
            for input in &inputs {
                let second = if input.starts_with("{\"a\":\"x") { 1 } else { 2 };
                let offset =
                    input.find("{\"a\":\"x").or_else(|| input.find("{\n\"a\":\"x")).expect("long record");
                let reader = Chunked { data: input.as_bytes().to_vec(), position: 0, chunk };
                let mut records = RecordReader::new(reader, READ_CHUNK);
                let error = records.next_batch(10).await.expect_err("too large");
                let ReadError::RecordTooLarge { record, offset: at, .. } = error else {
                    panic!("chunk {chunk}, {:?}: {error}", &input[..10]);
                };
                assert_eq!((record, at), (second, offset as u64), "chunk {chunk}, {:?}", &input[..10]);
            }
        }
    }

    /// The splitter fed what nobody checked: whatever the bytes and however they arrive, it
    /// gives records where their offsets say, or a [`ReadError`], and never panics or loops.
    mod fuzz {
        use futures::executor::block_on;
        use proptest::prelude::*;
        use proptest::sample::select;
        use serde_json::Value;
        use sluice_fuzz::json::{json_object, json_value};
        use sluice_fuzz::{Bytes, Corruption, corrupted, json_ish_bytes};

        use super::*;

        const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

        /// Keys of records shaped like the ones the splitter meets most (an id, a state, a list
        /// of nested entries, a timestamp), beside generated ones.
        const KEYS: &[&str] = &["id", "state", "history", "updatedAt"];

        /// Everything reading an input gave.
        #[derive(Debug)]
        struct Outcome {
            records: Vec<ReadRecord>,
            /// What ended the input early, if anything did.
            error: Option<ReadError>,
            shape: Option<Shape>,
        }

        impl Outcome {
            /// The same records, error and shape as `other`.
            fn same_as(&self, other: &Outcome) -> bool {
                let error = |outcome: &Outcome| outcome.error.as_ref().map(ToString::to_string);
                self.records == other.records && error(self) == error(other) && self.shape == other.shape
            }

            /// Each record parsed as JSON, or the text that did not parse.
            fn values(&self) -> Vec<Result<Value, String>> {
                self.records
                    .iter()
                    .map(|record| {
                        serde_json::from_slice(&record.bytes)
                            .map_err(|_| String::from_utf8_lossy(&record.bytes).into_owned())
                    })
                    .collect()
            }
        }

        /// Reads all of `input`, handed out `chunk` bytes per read, `batch` records at a time,
        /// checking that every record is where its offset says, after the one before.
        fn read(
            input: &[u8],
            chunk: usize,
            batch: usize,
            max_record_bytes: usize,
        ) -> Result<Outcome, TestCaseError> {
            let source = Chunked { data: input.to_vec(), position: 0, chunk };
            let mut reader = RecordReader::new(source, max_record_bytes);
            let mut records: Vec<ReadRecord> = Vec::new();
            let error = loop {
                // Records are never empty and never overlap, so more than one per byte is a loop.
                prop_assert!(records.len() <= input.len(), "more records than bytes");
                match block_on(reader.next_batch(batch)) {
                    Ok(next) if next.is_empty() => break None,
                    Ok(next) => {
                        prop_assert!(next.len() <= batch, "{} records in a batch of {batch}", next.len());
                        records.extend(next);
                    }
                    Err(error) => break Some(error),
                }
            };
            let mut end_of_previous = 0;
            for record in &records {
                prop_assert!(!record.bytes.is_empty(), "an empty record at {}", record.offset);
                prop_assert!(record.offset >= end_of_previous, "record at {} overlaps", record.offset);
                let start = usize::try_from(record.offset)?;
                let found = input.get(start..start + record.bytes.len());
                prop_assert_eq!(found, Some(&record.bytes[..]), "record at {}", start);
                end_of_previous = record.offset + record.bytes.len() as u64;
            }
            if error.is_none() {
                prop_assert_eq!(reader.bytes_read(), input.len() as u64);
                prop_assert_eq!(reader.records(), records.len() as u64);
            }
            Ok(Outcome { records, error, shape: reader.shape() })
        }

        /// Reads `input` in reads of `chunk` bytes and all at once, checks both give the same,
        /// and that the input failed, if it did, only for being malformed.
        fn read_both_ways(input: &[u8], chunk: usize, batch: usize) -> Result<Outcome, TestCaseError> {
            let chunked = read(input, chunk, batch, 1 << 20)?;
            let whole = read(input, input.len().max(1), batch, 1 << 20)?;
            prop_assert!(chunked.same_as(&whole), "chunk {}: {:?}\nwhole: {:?}", chunk, chunked, whole);
            if let Some(error) = &chunked.error {
                prop_assert!(matches!(error, ReadError::Malformed { .. }), "{error}");
            }
            Ok(chunked)
        }

        /// Noise that often starts as one of the shapes would.
        fn noise() -> impl Strategy<Value = Bytes> {
            let starts: Vec<&[u8]> =
                vec![b"", b"[", b"{", b" {\n", BYTE_ORDER_MARK, b"\xEF\xBB\xBF[", b"\xEF\xBB"];
            (select(starts), json_ish_bytes(512)).prop_map(|(start, bytes)| Bytes([start, &bytes].concat()))
        }

        /// How generated records are laid out in a file.
        #[derive(Debug, Clone, Copy)]
        enum Layout {
            /// One compact object per line.
            Lines { line_end: &'static str, blank_lines: bool },
            /// One array of any values, compact with this between elements, or pretty-printed.
            Array { pretty: bool, between: &'static str },
            /// Objects one after another, each pretty-printed over lines or all compact on one.
            Objects { pretty: bool, between: &'static str },
        }

        /// Records written out in a layout, as a file holds them.
        #[derive(Debug, Clone)]
        struct Generated {
            values: Vec<Value>,
            layout: Layout,
            input: Bytes,
        }

        impl Generated {
            fn shape(&self) -> Shape {
                match self.layout {
                    Layout::Lines { .. } => Shape::JsonLines,
                    Layout::Array { .. } => Shape::Array,
                    Layout::Objects { .. } => Shape::ConcatenatedObjects,
                }
            }
        }

        fn generated() -> impl Strategy<Value = Generated> {
            let object = || json_object(KEYS, json_value(KEYS));
            // A pretty-printed object spans lines only when it has a member.
            let multiline = object().prop_map(|mut value| {
                if let Value::Object(members) = &mut value
                    && members.is_empty()
                {
                    members.insert("id".into(), Value::from(0));
                }
                value
            });
            let records = prop_oneof![
                (proptest::collection::vec(object(), 1..8), select(vec!["\n", "\r\n"]), any::<bool>())
                    .prop_map(|(values, line_end, blank_lines)| (
                        values,
                        Layout::Lines { line_end, blank_lines }
                    )),
                (
                    proptest::collection::vec(json_value(KEYS), 0..8),
                    any::<bool>(),
                    select(vec![",", ", ", " ,\n  ", ",\r\n"])
                )
                    .prop_map(|(values, pretty, between)| (values, Layout::Array { pretty, between })),
                (proptest::collection::vec(multiline, 1..6), select(vec!["", "\n", " ", "\r\n", "\n\n"]))
                    .prop_map(|(values, between)| (values, Layout::Objects { pretty: true, between })),
                (proptest::collection::vec(object(), 2..8), select(vec!["", " ", "\t"]))
                    .prop_map(|(values, between)| (values, Layout::Objects { pretty: false, between })),
            ];
            let space = || select(vec!["", "\n", " \r\n "]);
            (records, any::<bool>(), space(), space()).prop_map(
                |((values, layout), bom, leading, trailing)| {
                    let text = |value: &Value, pretty: bool| {
                        if pretty { format!("{value:#}") } else { value.to_string() }
                    };
                    let body = match layout {
                        Layout::Lines { line_end, blank_lines } => {
                            let between =
                                if blank_lines { format!("{line_end}  {line_end}") } else { line_end.into() };
                            values.iter().map(|value| text(value, false)).collect::<Vec<_>>().join(&between)
                        }
                        Layout::Array { pretty: true, .. } => text(&Value::Array(values.clone()), true),
                        Layout::Array { pretty: false, between } => {
                            let elements: Vec<String> =
                                values.iter().map(|value| text(value, false)).collect();
                            format!("[{}]", elements.join(between))
                        }
                        Layout::Objects { pretty, between } => {
                            values.iter().map(|value| text(value, pretty)).collect::<Vec<_>>().join(between)
                        }
                    };
                    let bom = if bom { BYTE_ORDER_MARK } else { b"" };
                    let input =
                        Bytes([bom, leading.as_bytes(), body.as_bytes(), trailing.as_bytes()].concat());
                    Generated { values, layout, input }
                },
            )
        }

        proptest! {
            #![proptest_config(sluice_fuzz::config())]

            #[test]
            fn any_bytes_split_into_records_where_their_offsets_say_or_fail_as_malformed(
                input in noise(),
                chunk in 1usize..=64,
                batch in 1usize..=8,
            ) {
                read_both_ways(&input, chunk, batch)?;
            }

            #[test]
            fn a_record_past_the_limit_fails_the_input_after_the_records_before_it(
                input in noise(),
                chunk in 1usize..=64,
                limit in 1usize..=32,
            ) {
                let outcome = read(&input, chunk, 1, limit)?;
                match outcome.error {
                    None | Some(ReadError::Malformed { .. }) => {}
                    Some(ReadError::RecordTooLarge { record, offset, .. }) => {
                        prop_assert_eq!(record, outcome.records.len() as u64 + 1);
                        let end = outcome.records.last().map_or(0, |last| last.offset + last.bytes.len() as u64);
                        prop_assert!(offset >= end, "record {} at {} starts before {}", record, offset, end);
                    }
                    Some(error) => prop_assert!(false, "{error}"),
                }
            }

            #[test]
            fn generated_records_read_back_as_generated_in_every_shape(
                generated in generated(),
                chunk in 1usize..=64,
                batch in 1usize..=8,
            ) {
                let outcome = read_both_ways(&generated.input, chunk, batch)?;
                prop_assert!(outcome.error.is_none(), "{:?}", outcome.error);
                let expected: Vec<Result<Value, String>> = generated.values.iter().cloned().map(Ok).collect();
                prop_assert_eq!(outcome.values(), expected);
                prop_assert_eq!(outcome.shape, Some(generated.shape()));
            }

            #[test]
            fn broken_generated_records_split_or_fail_as_malformed(
                (generated, (input, how)) in generated().prop_flat_map(|generated| {
                    let broken = corrupted(generated.input.0.clone());
                    (Just(generated), broken)
                }),
                chunk in 1usize..=64,
                batch in 1usize..=8,
            ) {
                let outcome = read_both_ways(&input, chunk, batch)?;
                let Corruption::Truncated(at) = how else { return Ok(()) };
                match generated.layout {
                    Layout::Array { .. } => {
                        let open = generated.input.iter().position(|&byte| byte == b'[').unwrap_or(0);
                        let close = generated.input.iter().rposition(|&byte| byte == b']').unwrap_or(0);
                        if at > open && at <= close {
                            let not_closed = matches!(
                                outcome.error,
                                Some(ReadError::Malformed { problem: "the array is not closed", .. })
                            );
                            prop_assert!(not_closed, "cut at {}: {:?}", at, outcome.error);
                        }
                    }
                    // A cut file loses its last record, never one before it.
                    Layout::Lines { .. } | Layout::Objects { .. } => {
                        prop_assert!(outcome.error.is_none(), "{:?}", outcome.error);
                        let values = outcome.values();
                        prop_assert!(values.len() <= generated.values.len());
                        let whole = values.len().saturating_sub(1);
                        let expected: Vec<Result<Value, String>> =
                            generated.values[..whole].iter().cloned().map(Ok).collect();
                        prop_assert_eq!(&values[..whole], &expected[..]);
                    }
                }
            }
        }
    }
}
