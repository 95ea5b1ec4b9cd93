//! Large text buffers of Arrow columns, handed back for the next batch when the arrays that
//! used them are dropped.
//!
//! A batch's text column of several MiB is past glibc's mmap threshold (fixed at 1 MiB by the
//! binary, see `main.rs`), so malloc maps it fresh and every page faults when the rows are
//! copied in, then unmaps it when the batch is written. That was about a third of the Arrow
//! step on 500 calls of 100-event bodies. A buffer kept here keeps its pages; the pool holds at most
//! [`POOL_BYTES`], so what it adds to the resident set is bounded.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::buffer::Buffer;

/// Buffers from this size up are pooled. A connector's batches (50 records, about 1.7 MiB of
/// raw events per column) stay below it: pooling theirs bought no measurable speed and kept
/// idle buffers resident.
const POOLED_FROM: usize = 4 << 20;
/// The most the process's pool keeps, in bytes of capacity.
const POOL_BYTES: usize = 32 << 20;

/// The pool every text column of the process draws from.
pub static TEXT_BUFFERS: TextBufferPool = TextBufferPool::new(POOL_BYTES);

/// Idle buffers, at most `limit` bytes of them; past it, the smallest are freed.
pub struct TextBufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
    limit: usize,
}

impl TextBufferPool {
    const fn new(limit: usize) -> Self {
        TextBufferPool { idle: Mutex::new(Vec::new()), limit }
    }

    /// An empty buffer for at least `capacity` bytes: the smallest idle one that fits, else
    /// the largest idle one grown (its pages stay), else a new one. Always taking one when any
    /// is idle keeps as few idle as there are columns in flight, whatever their sizes.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity < POOLED_FROM {
            return Vec::with_capacity(capacity);
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let fitting = idle
            .iter()
            .enumerate()
            .filter(|(_, buffer)| buffer.capacity() >= capacity)
            .min_by_key(|(_, buffer)| buffer.capacity());
        let chosen = fitting
            .or_else(|| idle.iter().enumerate().max_by_key(|(_, buffer)| buffer.capacity()))
            .map(|(index, _)| index);
        let Some(mut buffer) = chosen.map(|index| idle.swap_remove(index)) else {
            return Vec::with_capacity(capacity);
        };
        drop(idle);
        buffer.clear();
        buffer.reserve(capacity);
        buffer
    }

    /// `values` as an Arrow buffer that comes back to this pool once the last array using it
    /// is dropped.
    pub fn lend(&'static self, values: Vec<u8>) -> Buffer {
        if values.capacity() < POOLED_FROM {
            return Buffer::from_vec(values);
        }
        let len = values.len();
        let owner = Arc::new(Lent { values, pool: self });
        let ptr = NonNull::new(owner.values.as_ptr().cast_mut()).unwrap_or(NonNull::dangling());
        // SAFETY: `ptr` is the start of `owner`'s vector, which holds `len` initialised bytes
        // and is neither changed nor freed while `owner` lives; the buffer keeps `owner` alive.
        unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push(buffer);
        let mut held: usize = idle.iter().map(Vec::capacity).sum();
        while held > self.limit {
            let Some((smallest, _)) = idle.iter().enumerate().min_by_key(|(_, buffer)| buffer.capacity())
            else {
                break;
            };
            held -= idle.swap_remove(smallest).capacity();
        }
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).iter().map(Vec::capacity).sum()
    }
}

/// A pooled buffer lent to Arrow; dropping it gives the buffer back.
struct Lent {
    values: Vec<u8>,
    pool: &'static TextBufferPool,
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.values));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(limit: usize) -> &'static TextBufferPool {
        Box::leak(Box::new(TextBufferPool::new(limit)))
    }

    #[test]
    fn a_buffer_comes_back_once_its_last_array_is_dropped_and_serves_the_next_batch() {
        let pool = pool(POOL_BYTES);
        let mut values = pool.take(POOLED_FROM * 2);
        values.extend(std::iter::repeat_n(b'x', POOLED_FROM + 3));
        let address = values.as_ptr();
        let buffer = pool.lend(values);
        assert_eq!(buffer.len(), POOLED_FROM + 3);
        assert!(buffer.as_slice().iter().all(|&byte| byte == b'x'));
        let clone = buffer.clone();
        drop(buffer);
        assert_eq!(pool.held(), 0, "still lent while a clone lives");
        assert_eq!(clone.as_slice()[POOLED_FROM + 2], b'x');
        drop(clone);
        assert_eq!(pool.held(), POOLED_FROM * 2);
        let again = pool.take(POOLED_FROM + 3);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn the_smallest_buffer_that_fits_is_taken_else_the_largest_grows() {
        let pool = pool(POOL_BYTES);
        let (small, large) = (pool.take(POOLED_FROM), pool.take(POOLED_FROM * 2));
        drop((pool.lend(small), pool.lend(large)));
        assert_eq!(pool.held(), POOLED_FROM * 3);
        let fitting = pool.take(POOLED_FROM);
        assert_eq!(fitting.capacity(), POOLED_FROM, "the 1 MiB one fits");
        assert_eq!(pool.held(), POOLED_FROM * 2);
        drop(pool.lend(fitting));
        let bigger = pool.take(POOLED_FROM * 3);
        assert!(bigger.capacity() >= POOLED_FROM * 3);
        assert_eq!(pool.held(), POOLED_FROM, "none fits: the 2 MiB one grew; the 1 MiB one stays idle");
    }

    #[test]
    fn small_buffers_are_plain_arrow_buffers_and_never_pooled() {
        let pool = pool(POOL_BYTES);
        let mut values = pool.take(16);
        values.extend_from_slice(b"hello");
        let buffer = pool.lend(values);
        assert_eq!(buffer.as_slice(), b"hello");
        drop(buffer);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn the_pool_keeps_the_largest_buffers_within_its_limit() {
        let pool = pool(POOLED_FROM * 5);
        let buffers: Vec<Buffer> = (1..=4).map(|mib| pool.lend(pool.take(POOLED_FROM * mib))).collect();
        drop(buffers);
        assert_eq!(pool.held(), POOLED_FROM * 4, "1 + 2 + 3 + 4 MiB over a 5 MiB limit keeps the 4 MiB one");
    }
}
