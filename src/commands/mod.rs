//! One module per subcommand.

pub mod analyze;
pub mod collect;
pub mod diff;
pub mod inspect;
pub mod show;

/// Opens a bundle, or says on stderr why it cannot be read: then the exit status for
/// unusable input.
pub fn open_bundle(path: &std::path::Path) -> Result<snap_bundle::Bundle, u8> {
    snap_bundle::Bundle::open(path).map_err(|e| {
        eprintln!("snap: {e}");
        crate::exit::BAD_INPUT
    })
}

/// The output of `inspect` and `diff`: text for people, JSON for programs.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}
