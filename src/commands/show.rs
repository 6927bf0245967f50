//! `snap show BUNDLE [VIEW] [ARGS...]`: a classic view (tcpdump, ...) replayed from a
//! bundle's raw data; without a view, the list of views and whether this bundle has
//! what each needs. The views themselves live in `crate::views`.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::exit;
use crate::views::{self, ViewError};

// `-h` belongs to the views (`free -h`): help is `--help` only.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// A bundle (.tar.zst archive or directory) or a sos report (.tar.xz, .tar.gz or extracted).
    bundle: PathBuf,
    /// The view; omit it to list them.
    view: Option<String>,
    /// The view's own options, as the classic tool takes them (`tcpdump -nn -A`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(a: Args) -> u8 {
    let bundle = match super::open_bundle(&a.bundle) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match &a.view {
        None => views::list(&bundle, &mut out).map_err(ViewError::Io),
        Some(name) => match views::find(name) {
            Some(view) => (view.render)(&bundle, &a.args, &mut out),
            None => Err(ViewError::Usage(format!(
                "no view named {name:?}; the views are: {}",
                views::registry().iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
            ))),
        },
    };
    let result = result.and_then(|()| out.flush().map_err(ViewError::Io));
    match result {
        Ok(()) => exit::OK,
        // `snap show b tcpdump | head`: the reader has seen enough.
        Err(ViewError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(ViewError::Io(e)) => {
            eprintln!("snap: writing the view failed: {e}");
            exit::OUTPUT
        }
        Err(e) => {
            eprintln!("snap: {e}");
            exit::BAD_INPUT
        }
    }
}
