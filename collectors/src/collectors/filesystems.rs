//! PLACEHOLDER: being written.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub const NAME: &str = "filesystems";

pub struct Filesystems;

impl Collector for Filesystems {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, _ctx: &mut Ctx) -> Result<(), Halt> {
        Err(Halt::Failed("not written yet".into()))
    }
}
