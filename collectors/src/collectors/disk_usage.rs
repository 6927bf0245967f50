//! PLACEHOLDER: being written.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub const NAME: &str = "disk_usage";

pub struct DiskUsage;

impl Collector for DiskUsage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, _ctx: &mut Ctx) -> Result<(), Halt> {
        Err(Halt::Failed("not written yet".into()))
    }
}
