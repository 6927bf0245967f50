//! Thin, safe wrappers over the few libc calls the collectors need.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use snap_bundle::manifest::Clocks;

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; the clocks used exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME, read back to back.
pub fn clocks() -> Clocks {
    Clocks {
        realtime_ns: clock_ns(libc::CLOCK_REALTIME),
        monotonic_ns: clock_ns(libc::CLOCK_MONOTONIC),
        boottime_ns: clock_ns(libc::CLOCK_BOOTTIME),
    }
}

pub fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf has no memory effects.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

/// The result of statvfs(2).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatVfs {
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
}

pub fn statvfs(path: &Path) -> io::Result<StatVfs> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: zeroed statvfs is a valid out-parameter; c is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(StatVfs {
        frsize: if s.f_frsize > 0 { s.f_frsize as u64 } else { s.f_bsize as u64 },
        blocks: s.f_blocks as u64,
        bfree: s.f_bfree as u64,
        bavail: s.f_bavail as u64,
        files: s.f_files as u64,
        ffree: s.f_ffree as u64,
    })
}

/// Resource use of this process so far: (user ms, system ms, peak RSS in KiB).
pub fn rusage() -> (u64, u64, u64) {
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    (ms(r.ru_utime), ms(r.ru_stime), r.ru_maxrss as u64)
}

const IOPRIO_CLASS_SHIFT: i32 = 13;
const IOPRIO_WHO_PROCESS: i32 = 1;

/// Lowers CPU and I/O priority of the calling thread (and of threads it starts later):
/// nice 19 and best-effort I/O at level 7. Returns what is in force afterwards.
pub fn lower_priority() -> (i32, String) {
    // SAFETY: plain syscalls on the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (2 << IOPRIO_CLASS_SHIFT) | 7);
    }
    current_priority()
}

/// Sets the nice value of the calling thread only (Linux applies setpriority to one
/// thread). Raising priority back needs CAP_SYS_NICE; failure leaves it as it was.
pub fn set_thread_nice(nice: i32) {
    // SAFETY: gettid and setpriority on the calling thread have no memory effects.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}

/// The nice value and I/O priority of the calling thread.
pub fn current_priority() -> (i32, String) {
    // SAFETY: plain syscalls; errno is reset before getpriority as it may return -1.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    let io = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) };
    let io = if io < 0 {
        "unknown".to_string()
    } else {
        let class = (io as i32) >> IOPRIO_CLASS_SHIFT;
        let level = (io as i32) & 0x7;
        match class {
            0 => format!("none (from nice {nice})"),
            1 => format!("realtime/{level}"),
            2 => format!("best-effort/{level}"),
            3 => "idle".to_string(),
            c => format!("class {c}/{level}"),
        }
    };
    (nice, io)
}

/// Offset of local time from UTC in seconds and the zone abbreviation at `unix_secs`.
pub fn local_offset(unix_secs: i64) -> (i64, String) {
    let t: libc::time_t = unix_secs as libc::time_t;
    // SAFETY: zeroed tm is a valid out-parameter; tzset initialises the zone first.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        tzset();
        libc::localtime_r(&t, &mut tm);
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    (tm.tm_gmtoff as i64, zone)
}

extern "C" {
    fn tzset();
}

/// `syslog(2)` READ_ALL: the kernel ring buffer without consuming it.
pub fn klog_read_all() -> io::Result<Vec<u8>> {
    const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
    const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;
    // SAFETY: size query takes no buffer; the read writes at most len bytes into buf.
    let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    if size < 0 {
        return Err(io::Error::last_os_error());
    }
    // dmesg adds a little room too: a buffer of exactly the log size can lose records.
    let mut buf = vec![0u8; (size as usize).max(4096) + 4096];
    let n = unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buf.as_mut_ptr() as *mut libc::c_char, buf.len() as i32) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}
