//! The sampling window: raw copies of the fast-moving files taken every interval, so
//! that rates (CPU per CPU and per process, run queue, swap, I/O, retransmissions) can
//! be computed at analysis time from two samples, as `vmstat 1` or `top` would.

use std::time::{Duration, Instant};

use snap_bundle::manifest::SampleRecord;
use snap_bundle::names;

use crate::collectors::processes::list_pids;
use crate::ctx::{Ctx, Stop};
use crate::sys;

/// System-wide files copied into every sample.
pub const SAMPLED: &[&str] = &[
    "/proc/stat",
    "/proc/loadavg",
    "/proc/vmstat",
    "/proc/meminfo",
    "/proc/diskstats",
    "/proc/net/dev",
    "/proc/net/snmp",
    "/proc/net/netstat",
    "/proc/pressure/cpu",
    "/proc/pressure/memory",
    "/proc/pressure/io",
    "/proc/pressure/irq",
];

type Partial = (Vec<SampleRecord>, Stop);

/// Takes samples 0..=window/interval, one every interval. A zero window takes none.
pub fn run(ctx: &mut Ctx, window: Duration, interval: Duration) -> Result<Vec<SampleRecord>, Partial> {
    let mut samples = Vec::new();
    if window.is_zero() || interval.is_zero() {
        return Ok(samples);
    }
    let count = (window.as_millis() / interval.as_millis()) as usize;
    let start = Instant::now();
    for index in 0..=count {
        let due = start + interval * index as u32;
        while Instant::now() < due {
            if let Err(s) = ctx.check() {
                return Err((samples, s));
            }
            let left = due.saturating_duration_since(Instant::now());
            ctx.progress(&format!(
                "window: {:.0} s left",
                (start + window).saturating_duration_since(Instant::now()).as_secs_f64().ceil()
            ));
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        if let Err(s) = ctx.check() {
            return Err((samples, s));
        }
        samples.push(take(ctx, index));
    }
    Ok(samples)
}

fn take(ctx: &mut Ctx, index: usize) -> SampleRecord {
    let clocks = sys::clocks();
    let system = SAMPLED.iter().map(|h| (h.to_string(), names::sample(index, h))).collect();
    ctx.copy_batch(system, false);
    let procs = list_pids(ctx)
        .into_iter()
        .map(|pid| {
            let h = format!("/proc/{pid}/stat");
            let e = names::sample(index, &h);
            (h, e)
        })
        .collect();
    ctx.copy_batch(procs, false);
    SampleRecord { index, clocks }
}
