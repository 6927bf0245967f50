//! PLACEHOLDER: being written.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub const NAME: &str = "sockets";

pub struct Sockets;

impl Collector for Sockets {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, _ctx: &mut Ctx) -> Result<(), Halt> {
        Err(Halt::Failed("not written yet".into()))
    }
}
