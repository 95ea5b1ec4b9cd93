//! Reading a job's input: the object (or a sweep's dead letters) batch by batch, where each
//! record was first read, and each batch's plugin chain on a task of its own.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::job::reader::{ReadError, ReadRecord, RecordReader, Shape};
use crate::job::records::JobInput;
use crate::pipeline::{Chain, ChainOutput};
use crate::plugin::RecordIn;
use crate::sink::dead_letter::{DeadLetter, Origin};

/// A batch of records as read, with how far into the object it ends.
pub(super) struct ReadBatch {
    pub(super) records: Vec<ReadRecord>,
    pub(super) bytes_read: u64,
}

/// Where one record of the input was first read: its place in that file.
pub(super) struct InputRecord {
    /// Its position in that file, from 1.
    pub(super) number: u64,
    /// Where it starts in that file, in bytes; unknown for letters written before offsets were.
    pub(super) offset: Option<u64>,
}

impl InputRecord {
    /// The `index`-th record of a batch whose first record is `first_record + 1`, and its
    /// bytes: for a user's file the record as read; for a dead-letter object, the refused
    /// record a letter holds.
    fn of(input: JobInput, read: ReadRecord, first_record: u64, index: usize) -> (Self, Vec<u8>) {
        let number = first_record + index as u64 + 1;
        let as_read = |read: ReadRecord| (InputRecord { number, offset: Some(read.offset) }, read.bytes);
        match input {
            JobInput::Object => as_read(read),
            JobInput::DeadLetters => match DeadLetter::parse_line(&read.bytes) {
                Some(DeadLetter { origin: Origin::JobFile(at), value, .. }) => (
                    InputRecord { number: at.record, offset: at.byte_offset },
                    value.to_bytes().unwrap_or_else(|| read.bytes.clone()),
                ),
                _ => as_read(read),
            },
        }
    }

    /// `record N at byte B`, for reasons.
    pub(super) fn position(&self) -> String {
        match self.offset {
            Some(offset) => format!("record {} at byte {offset}", self.number),
            None => format!("record {}", self.number),
        }
    }
}

/// One batch whose plugin chain runs on a task of its own.
pub(super) struct ChainRun {
    pub(super) task: tokio::task::JoinHandle<ChainOutput>,
    /// Where the records were read, for the rows' numbers and the dead letters.
    pub(super) inputs: Vec<InputRecord>,
    /// The records, shared with the chain: a refused one becomes a dead letter.
    pub(super) records: Arc<[RecordIn]>,
    pub(super) bytes_read: u64,
}

impl ChainRun {
    pub(super) fn start(chain: &Chain, input: JobInput, batch: ReadBatch, first_record: u64) -> Self {
        let (inputs, records): (Vec<InputRecord>, Vec<RecordIn>) = batch
            .records
            .into_iter()
            .enumerate()
            .map(|(index, read)| {
                let (place, value) = InputRecord::of(input, read, first_record, index);
                (place, RecordIn { key: None, value, headers: Vec::new() })
            })
            .unzip();
        let records: Arc<[RecordIn]> = records.into();
        let chain = chain.clone();
        let shared = records.clone();
        let task = tokio::spawn(async move { chain.run(shared).await });
        ChainRun { task, inputs, records, bytes_read: batch.bytes_read }
    }
}

/// Reads the object batch by batch until it ends or the receiver goes away; returns the
/// shape the reader found.
pub(super) async fn read_batches<R: tokio::io::AsyncRead + Unpin>(
    mut reader: RecordReader<R>,
    batch_records: usize,
    batches: mpsc::Sender<ReadBatch>,
) -> Result<Option<Shape>, ReadError> {
    loop {
        let records = reader.next_batch(batch_records).await?;
        if records.is_empty() {
            return Ok(reader.shape());
        }
        if batches.send(ReadBatch { records, bytes_read: reader.bytes_read() }).await.is_err() {
            return Ok(reader.shape());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(offset: u64, bytes: &[u8]) -> ReadRecord {
        ReadRecord { offset, bytes: bytes.to_vec() }
    }

    #[test]
    fn a_records_number_counts_from_the_batchs_first_and_its_place_is_where_it_was_read() {
        let (place, bytes) = InputRecord::of(JobInput::Object, read(120, b"{}"), 40, 2);
        assert_eq!((place.number, place.offset), (43, Some(120)));
        assert_eq!(bytes, b"{}");
        assert_eq!(place.position(), "record 43 at byte 120");
    }

    #[test]
    fn a_swept_dead_letter_is_read_as_the_record_it_holds_at_its_first_place() {
        let letter = br#"{"job_id":"00000000-0000-0000-0000-000000000001","bucket":"b","key":"k","etag":"e","record":7,"byte_offset":300,"value":"{\"a\":1}","reason":"r","step":"s","plugin_version":"p@1","trapped":false,"failed_at":"2026-01-01T00:00:00Z"}"#;
        let (place, bytes) = InputRecord::of(JobInput::DeadLetters, read(0, letter), 0, 0);
        assert_eq!((place.number, place.offset), (7, Some(300)), "where the user's file had it");
        assert_eq!(bytes, br#"{"a":1}"#, "the record the letter holds, not the letter");
        let (other, bytes) = InputRecord::of(JobInput::DeadLetters, read(9, b"not a letter"), 0, 0);
        assert_eq!((other.number, other.offset), (1, Some(9)), "a line that is no letter is read as it is");
        assert_eq!(bytes, b"not a letter");
    }

    #[tokio::test]
    async fn the_object_is_read_in_batches_of_the_configured_size_until_it_ends() {
        let body: &[u8] = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n";
        let (sender, mut batches) = mpsc::channel(10);
        let shape = read_batches(RecordReader::new(body, 1 << 20), 2, sender).await.expect("read");
        assert!(shape.is_some(), "the reader says what it found");
        let mut sizes = Vec::new();
        let mut last_bytes = 0;
        while let Some(batch) = batches.recv().await {
            sizes.push(batch.records.len());
            assert!(batch.bytes_read >= last_bytes, "reading only moves forward");
            last_bytes = batch.bytes_read;
        }
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(last_bytes, body.len() as u64);
    }

    #[tokio::test]
    async fn reading_stops_when_nobody_takes_the_batches_any_more() {
        let body: &[u8] = b"{}\n{}\n{}\n{}\n";
        let (sender, batches) = mpsc::channel(1);
        drop(batches);
        let outcome = read_batches(RecordReader::new(body, 1 << 20), 1, sender).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}
