//! Host facts that offline replay needs, read under the collector root.

use snap_bundle::manifest::HostFacts;

use crate::ctx::Ctx;
use crate::sys;

fn text(ctx: &mut Ctx, path: &str) -> Option<String> {
    let out = ctx.read(path);
    (out.status == snap_bundle::EntryStatus::Ok).then(|| snap_bundle::text::lossy(&out.data).trim().to_string())
}

pub fn facts(ctx: &mut Ctx, realtime_secs: i64) -> HostFacts {
    let uname = uname();
    let boot_time = text(ctx, "/proc/stat")
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0);
    let online_cpus = text(ctx, "/sys/devices/system/cpu/online")
        .and_then(|s| snap_bundle::cpulist::count(&s))
        .or_else(|| ctx.is_host_root().then(|| sys::sysconf(libc::_SC_NPROCESSORS_ONLN).map(|n| n as u32)).flatten())
        .unwrap_or(0);
    let (utc_offset_seconds, timezone) = sys::local_offset(realtime_secs);
    let host_root = ctx.is_host_root();
    HostFacts {
        hostname: text(ctx, "/proc/sys/kernel/hostname").unwrap_or_else(|| uname.0.clone()),
        kernel_release: text(ctx, "/proc/sys/kernel/osrelease").unwrap_or_else(|| uname.1.clone()),
        kernel_version: text(ctx, "/proc/sys/kernel/version").unwrap_or_else(|| uname.2.clone()),
        arch: if host_root { uname.3 } else { std::env::consts::ARCH.to_string() },
        endianness: if cfg!(target_endian = "little") { "little" } else { "big" }.into(),
        page_size: sys::sysconf(libc::_SC_PAGESIZE).unwrap_or(4096),
        clock_ticks: sys::sysconf(libc::_SC_CLK_TCK).unwrap_or(100),
        boot_time,
        boot_id: text(ctx, "/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        online_cpus,
        utc_offset_seconds,
        timezone,
    }
}

/// (nodename, release, version, machine) from uname(2).
fn uname() -> (String, String, String, String) {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let f = |s: &[libc::c_char]| {
        let bytes: Vec<u8> = s.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        snap_bundle::text::lossy(&bytes).into_owned()
    };
    (f(&u.nodename), f(&u.release), f(&u.version), f(&u.machine))
}
