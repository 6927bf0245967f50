//! Live capture of a Linux host into a snap bundle.
//!
//! [`run`] owns the deadline, the byte budget, per-read time limits and the manifest;
//! each collector in [`collectors`] only declares what to copy or scan. The crate reads
//! nothing outside its collector root (`/` unless a test gives another), loads no
//! kernel modules and needs no netlink diag sockets.

pub mod capture;
pub mod collectors;
pub mod ctx;
pub mod guard;
pub mod host;
pub mod runner;
pub mod sys;
pub mod window;

pub use ctx::{Ctx, Stop};
pub use runner::{run, CollectError, Config, Summary};

/// Why a collector ended early.
#[derive(Debug)]
pub enum Halt {
    /// The whole run must stop (deadline, Ctrl-C, output failure).
    Stop(Stop),
    /// This collector could not do its work; the run goes on.
    Failed(String),
}

impl From<Stop> for Halt {
    fn from(s: Stop) -> Halt {
        Halt::Stop(s)
    }
}

/// One source of evidence. Implementations live one per file in [`collectors`].
pub trait Collector: Sync {
    /// Stable name, recorded in the manifest.
    fn name(&self) -> &'static str;
    /// Copies or scans what this collector is about. Per-entry failures are recorded
    /// through the context and are not errors.
    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt>;
}
