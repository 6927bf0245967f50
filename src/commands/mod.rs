//! One module per subcommand.

pub mod analyze;
pub mod collect;
pub mod diff;
pub mod inspect;
pub mod show;
