//! Tools that measure sluice against its peers and ceilings, for the targets of
//! `bench/TARGETS.md`.
//!
//! The binaries each measure one thing (see their module docs); this library holds what more
//! than one of them needs:
//!
//! - [`events`]: reproducible, realistic SendGrid event webhook bodies with unique event ids
//!   and a chosen share of events the normalization plugin must refuse;
//! - [`signing`]: P-256 keys and the SendGrid webhook signature sluice verifies, signed for the
//!   requests and checked again, without sluice, for the bare peer;
//! - [`kafka`]: a producer configured exactly like sluice's `DurableProducer`, and topic
//!   creation;
//! - [`native`]: the normalization plugin's declaration and rows in the host's typed form, for
//!   the binaries that run it natively.

pub mod events;
pub mod kafka;
pub mod native;
pub mod signing;
