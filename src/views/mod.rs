//! The classic views `snap show` replays from a bundle, one module per family, listed
//! once in [`registry`]. A view reads raw entries through the same parsers as the
//! analyzers and prints what the classic tool would have printed on the box at capture
//! time; it streams to its writer, so a view of 200,000 packets never sits in memory.

mod iostat;
mod net;
mod packets;
mod processes;
mod procps;
mod system;
mod top;

use std::io::{self, Write};

use snap_analyzers::{Input, Skip};
use snap_bundle::Bundle;

/// Why a view printed nothing (more).
#[derive(Debug)]
pub enum ViewError {
    /// Bad options for the view.
    Usage(String),
    /// The bundle lacks what the view needs, or holds it unreadable.
    Input(String),
    Io(io::Error),
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewError::Usage(m) | ViewError::Input(m) => f.write_str(m),
            ViewError::Io(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for ViewError {
    fn from(e: io::Error) -> ViewError {
        ViewError::Io(e)
    }
}

/// What the bundle lacks or holds unreadable, as the view's error.
fn skip(s: Skip) -> ViewError {
    match s {
        Skip::Missing(entries) => ViewError::Input(format!("the bundle has no {}", entries.join(", "))),
        Skip::Bad { entry, detail } => ViewError::Input(format!("{entry}: {detail}")),
    }
}

/// An entry that is there but not what the view can read.
fn bad(entry: &str, detail: impl std::fmt::Display) -> ViewError {
    ViewError::Input(format!("{entry}: {detail}"))
}

/// An entry's text, or the error naming it.
fn text(input: &Input, entry: &str) -> Result<String, ViewError> {
    input.text(entry).map(|t| t.into_owned()).map_err(skip)
}

pub type Render = fn(&Bundle, &[String], &mut dyn Write) -> Result<(), ViewError>;

/// One view.
pub struct View {
    pub name: &'static str,
    /// What it replays, with its options.
    pub replays: &'static str,
    /// The entries it reads.
    pub needs: &'static [&'static str],
    pub render: Render,
}

/// Every view, in the order `snap show BUNDLE` lists them.
pub fn registry() -> &'static [View] {
    &[
        packets::TCPDUMP,
        packets::CONVERSATIONS,
        procps::UPTIME,
        procps::FREE,
        procps::VMSTAT,
        system::DF,
        system::MOUNT,
        system::SYSCTL,
        system::DMESG,
        processes::PS,
        processes::LSOF,
        net::NETSTAT,
        net::SS,
        top::TOP,
        iostat::IOSTAT,
    ]
}

pub fn find(name: &str) -> Option<&'static View> {
    registry().iter().find(|v| v.name == name)
}

/// The list of views, each with whether this bundle has the entries it needs.
pub fn list(bundle: &Bundle, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "views of {} (snap show BUNDLE VIEW [OPTIONS]):", bundle.path().display())?;
    let input = Input::new(bundle);
    for v in registry() {
        let missing: Vec<&str> = v
            .needs
            .iter()
            .copied()
            .filter(|e| match *e {
                PER_PROCESS => input.pids().is_empty(),
                e => !matches!(bundle.get(e), Ok(Some(_))) && !procps::stands_in(&input, e),
            })
            .collect();
        let status = if missing.is_empty() { "available".to_string() } else { format!("needs {}", missing.join(", ")) };
        writeln!(out, "  {:<14} {}  [{}]", v.name, v.replays, status)?;
    }
    Ok(())
}

/// What the process views need: a stat file per process.
pub(crate) const PER_PROCESS: &str = "proc/<pid>/stat";

/// Refuses a view of processes on a bundle that has none (a sos report keeps only
/// ps listings, which `snap analyze` reads).
fn need_processes(input: &Input) -> Result<(), ViewError> {
    if !input.pids().is_empty() {
        return Ok(());
    }
    let hint = if input.sos().is_some() {
        ": a sos report keeps only ps listings (sos_commands/process/ps_*), which `snap analyze` reads"
    } else {
        ""
    };
    Err(ViewError::Input(format!("the bundle has no {PER_PROCESS}{hint}")))
}

/// Options of the classic single-letter kind (`-nn`, `-A`, `-c 10`): the letters given,
/// each with its value when `with_value` lists it. Unknown letters are a usage error.
pub fn letter_options(
    view: &str,
    args: &[String],
    flags: &str,
    with_value: &str,
) -> Result<Vec<(char, Option<String>)>, ViewError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty() && !l.starts_with('-')) else {
            return Err(ViewError::Usage(format!("{view}: unexpected argument {arg:?}")));
        };
        for (i, c) in letters.char_indices() {
            if with_value.contains(c) {
                let rest = &letters[i + c.len_utf8()..];
                let value = if rest.is_empty() { it.next().cloned() } else { Some(rest.to_string()) };
                let Some(value) = value else {
                    return Err(ViewError::Usage(format!("{view}: -{c} needs a value")));
                };
                out.push((c, Some(value)));
                break;
            }
            if !flags.contains(c) {
                return Err(ViewError::Usage(format!("{view}: unknown option -{c} (it takes -{flags}{with_value})")));
            }
            out.push((c, None));
        }
    }
    Ok(out)
}
