//! `snap`: capture a misbehaving Linux box into one bundle, and replay it anywhere.
//!
//! This crate is only the command line: argument parsing, the commands, rendering and
//! exit codes. Capture lives in `snap-collectors`, the bundle contract in
//! `snap-bundle`, findings in `snap-analyzers`.

mod commands;
mod heap;
mod units;
mod views;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Capture-and-replay snapshot bundler for Linux performance investigations.
#[derive(Parser)]
#[command(name = "snap", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture this host into a bundle (.tar.zst).
    Collect(commands::collect::Args),
    /// Show what a bundle holds: host facts, entries and their statuses, cost.
    Inspect(commands::inspect::Args),
    /// Findings with evidence and advice, from a bundle or the live host.
    Analyze(commands::analyze::Args),
    /// Every analysis rule: what it detects, its thresholds and why.
    Rules,
    /// A classic view (tcpdump, conversations, ...) replayed from a bundle.
    Show(commands::show::Args),
    /// What changed between two bundles: findings, host, figures, rates, processes.
    Diff(commands::diff::Args),
}

/// Exit codes shared by every command.
pub mod exit {
    /// The command did its work.
    pub const OK: u8 = 0;
    /// A general failure.
    pub const FAILURE: u8 = 1;
    /// Unusable input or arguments (a corrupt bundle, a bad flag).
    pub const BAD_INPUT: u8 = 2;
    /// The destination has no room, or writing to it failed; nothing was left behind.
    pub const OUTPUT: u8 = 3;
    /// Interrupted by a signal; nothing was left behind.
    pub const INTERRUPTED: u8 = 130;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let reads_a_bundle = match &cli.command {
        Command::Inspect(_) | Command::Show(_) | Command::Diff(_) => true,
        Command::Analyze(a) => !a.is_live(),
        Command::Collect(_) | Command::Rules => false,
    };
    if reads_a_bundle {
        heap::use_huge_pages();
        heap::grow_in_large_steps();
    }
    if !matches!(cli.command, Command::Collect(_)) {
        // A report piped into `head` or `less` ends quietly when the reader goes away,
        // as the classic tools do, instead of a panic on the failed write. (`collect`
        // keeps its own handling: it must clean up what it started.)
        // SAFETY: setting a signal's disposition to the default, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let code = match cli.command {
        Command::Collect(a) => commands::collect::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Analyze(a) => commands::analyze::run(a),
        Command::Rules => commands::analyze::rules(),
        Command::Show(a) => commands::show::run(a),
        Command::Diff(a) => commands::diff::run(a),
    };
    ExitCode::from(code)
}
