//! The defaults of pipeline settings left out of a file, shared by the source kinds and sinks.

pub(crate) fn default_body_limit() -> usize {
    5 << 20
}
pub(crate) fn default_signature_tolerance() -> u64 {
    600
}
pub(crate) fn default_delivery_timeout_ms() -> u64 {
    10_000
}
pub(crate) fn default_batch_records() -> usize {
    500
}
pub(crate) fn default_job_partitions() -> i32 {
    8
}
pub(crate) fn default_max_record_bytes() -> usize {
    16 << 20
}
pub(crate) fn default_batch_max_ms() -> u64 {
    1000
}
/// One member per core, so a pipeline uses the whole machine without being told to (each
/// member runs its own plugins; bench/RESULTS.md has the gain and the memory it costs).
pub(crate) fn default_members() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(crate::source::kafka::MAX_MEMBERS)
}
pub(crate) fn default_rotate_records() -> usize {
    100_000
}
pub(crate) fn default_rotate_bytes() -> usize {
    128 << 20
}
pub(crate) fn default_rotate_ms() -> u64 {
    60_000
}
