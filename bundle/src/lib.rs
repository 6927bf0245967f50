//! The snap bundle contract.
//!
//! A bundle is a `.tar.zst` archive (or the same tree as a directory) holding raw copies
//! of what the kernel said, a few scans, a sampling window and a `manifest.json` that
//! describes the host and every entry that was attempted. This crate owns the entry
//! names ([`names`]), the manifest types ([`manifest`]), the streaming writer
//! ([`writer`]) and the hostile-input-safe reader ([`reader`]). It builds on any OS, so
//! bundles can be opened on an engineer's laptop.

pub mod cpulist;
pub mod kmsg;
pub mod manifest;
pub mod mountinfo;
pub mod names;
pub mod reader;
pub mod scan;
pub mod sos;
pub mod text;
pub mod time;
mod untar;
pub mod writer;

pub use manifest::{EntryRecord, EntryStatus, Manifest};
pub use reader::{Bundle, BundleError, EntryReader, Limits, MappedEntry};
pub use writer::{AtomicOutput, BundleWriter};
