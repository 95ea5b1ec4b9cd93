//! Object keys: where a finished Parquet file is stored, under its window's
//! [stem](crate::sink::window_stem) so a replayed window replaces its files.

use crate::sink::window_stem::window_stem;

/// The key of a file: `{prefix}/{partition_path}{topic}+{partition}+{first_offset:020}.parquet`.
///
/// `prefix` may end in `/` or be empty (no leading `/` then); `partition_path` is a
/// [`PartitionedBatch::path`](super::partition::PartitionedBatch::path), empty or ending in `/`.
pub fn object_key(
    prefix: &str,
    partition_path: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
) -> String {
    let prefix = prefix.trim_end_matches('/');
    let separator = if prefix.is_empty() { "" } else { "/" };
    let stem = window_stem(topic, partition, first_offset);
    format!("{prefix}{separator}{partition_path}{stem}.parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_built_from_prefix_partition_and_first_offset() {
        assert_eq!(
            object_key("tables/events", "dt=2024-05-01/event=open/", "sendgrid-events", 3, 1234),
            "tables/events/dt=2024-05-01/event=open/sendgrid-events+3+00000000000000001234.parquet"
        );
    }

    #[test]
    fn the_same_first_record_gives_the_same_key() {
        let first = object_key("p", "dt=x/", "t", 0, 42);
        let replay = object_key("p", "dt=x/", "t", 0, 42);
        assert_eq!(first, replay);
        assert_ne!(first, object_key("p", "dt=x/", "t", 0, 43));
        assert_ne!(first, object_key("p", "dt=x/", "t", 1, 42));
    }

    #[test]
    fn slashes_around_the_prefix_do_not_change_the_key() {
        let expected = "p/t+0+00000000000000000000.parquet";
        assert_eq!(object_key("p", "", "t", 0, 0), expected);
        assert_eq!(object_key("p/", "", "t", 0, 0), expected);
        assert_eq!(object_key("", "", "t", 0, 0), "t+0+00000000000000000000.parquet");
    }
}
