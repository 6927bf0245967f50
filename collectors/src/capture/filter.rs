//! Compiles tcpdump filter expressions into classic BPF for the cooked capture socket.
//!
//! snap links no libpcap: a binary for production boxes must start where libpcap is
//! missing or has another soname. Filters are compiled, in this order, by
//! 1. libpcap's `pcap_compile`, loaded at run time (`libpcap.so.1`, then `libpcap.so.0.8`);
//! 2. `tcpdump -ddd`, if tcpdump is installed (it then opens no interface and needs no
//!    privilege, because `-y` with no `-i` makes it compile against a dead handle);
//! 3. nothing: [`FilterError::NoCompiler`]. Capture without a filter needs neither.
//!
//! Both compile for pcap's LINUX_SLL view, where a 16-byte cooked header precedes the
//! network header. The kernel filter of an AF_PACKET SOCK_DGRAM socket sees the packet
//! from the network header on, so the program is rewritten as libpcap's pcap-linux.c
//! does for its own cooked sockets (`fix_program`): offsets past the header move down
//! 16 bytes, the header's protocol and packet-type fields become the kernel's ancillary
//! loads, and accepting returns `snaplen - 16` so that the kernel truncates. Two things
//! libpcap leaves wrong are handled too: `len` (as in `greater 100`) gets the 16 bytes
//! added back, and run-time offsets into the header are refused instead of misread.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libloading::Library;

use super::bpf::{self, class, mode, op, size, ABS, ALU, H, IND, JMP, LD, LDX, LEN, MSH, RET, RET_A, W};

/// One classic BPF instruction, laid out as `struct sock_filter` / libpcap's `bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A program ready for SO_ATTACH_FILTER on the cooked socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub program: Vec<BpfInsn>,
    /// Which compiler made it: "libpcap.so.1", "libpcap.so.0.8" or "tcpdump -ddd".
    pub compiler: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("the filter needs libpcap (libpcap.so.1 or libpcap.so.0.8) or tcpdump, and neither was found; capture without --filter works without them")]
    NoCompiler,
    #[error("the filter `{expr}` is not valid: {compiler} said: {message}")]
    Syntax { expr: String, compiler: String, message: String },
    #[error("the filter `{expr}` reads link-layer fields (like `ether host`) that a cooked capture of all interfaces does not have: {detail}")]
    LinkLayer { expr: String, detail: String },
    #[error("the filter `{expr}` compiles to a program the kernel cannot run on a cooked socket: {reason}")]
    Unsupported { expr: String, reason: String },
    #[error("{compiler} failed to compile the filter `{expr}`: {message}")]
    Compiler { expr: String, compiler: String, message: String },
    #[error("a snaplen of {0} bytes is too small for a filter: it counts the 16-byte cooked header, so it must be at least 17")]
    Snaplen(u32),
}

const SLL_HDR_LEN: u32 = 16;
const DLT_LINUX_SLL: c_int = 113;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;
/// libpcap's and tcpdump's largest snaplen; the RET value is replaced anyway.
const MAXIMUM_SNAPLEN: u32 = 262_144;
const LIBPCAP_NAMES: [&str; 2] = ["libpcap.so.1", "libpcap.so.0.8"];
const TCPDUMP: &str = "tcpdump -ddd";
const TCPDUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// Compiles `expr` (tcpdump syntax) for the cooked socket. `snaplen` is pcap's: it
/// counts the 16-byte cooked header, so an accepted packet keeps `snaplen - 16` bytes.
pub fn compile(expr: &str, snaplen: u32) -> Result<Compiled, FilterError> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    // tcpdump lives in sbin on some distributions, which a user's PATH may lack.
    for sbin in ["/usr/sbin", "/sbin"] {
        if !dirs.iter().any(|d| d == Path::new(sbin)) {
            dirs.push(sbin.into());
        }
    }
    compile_with(expr, snaplen, &Compilers { libpcap: &LIBPCAP_NAMES, tcpdump_dirs: &dirs, timeout: TCPDUMP_TIMEOUT })
}

/// Where to look for compilers; tests narrow it to force one path.
struct Compilers<'a> {
    libpcap: &'a [&'a str],
    tcpdump_dirs: &'a [PathBuf],
    timeout: Duration,
}

fn compile_with(expr: &str, snaplen: u32, with: &Compilers) -> Result<Compiled, FilterError> {
    if snaplen <= SLL_HDR_LEN {
        return Err(FilterError::Snaplen(snaplen));
    }
    let (raw, compiler) = match libpcap_compile(expr, snaplen.min(MAXIMUM_SNAPLEN), with.libpcap) {
        Some(result) => result?,
        None => match find_tcpdump(with.tcpdump_dirs) {
            Some(path) => (tcpdump_compile(&path, expr, snaplen.min(MAXIMUM_SNAPLEN), with.timeout)?, TCPDUMP.into()),
            None => return Err(FilterError::NoCompiler),
        },
    };
    let program = translate(expr, &raw, snaplen - SLL_HDR_LEN)?;
    bpf::check(&program).map_err(|reason| FilterError::Unsupported { expr: expr.into(), reason })?;
    Ok(Compiled { program, compiler })
}

/// A compiler's refusal: link-layer primitives get the clearer error.
fn refused(expr: &str, compiler: &str, message: String) -> FilterError {
    let lower = message.to_lowercase();
    let link = ["ethernet address", "link-layer", "broadcast link", "linux cooked", "'gateway'"];
    if link.iter().any(|l| lower.contains(l)) {
        FilterError::LinkLayer { expr: expr.into(), detail: format!("{compiler} said: {message}") }
    } else {
        FilterError::Syntax { expr: expr.into(), compiler: compiler.into(), message }
    }
}

// ---- libpcap, loaded at run time ----

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut BpfInsn,
}

struct Libpcap {
    name: &'static str,
    open_dead: unsafe extern "C" fn(c_int, c_int) -> *mut c_void,
    compile: unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int,
    geterr: unsafe extern "C" fn(*mut c_void) -> *mut c_char,
    freecode: unsafe extern "C" fn(*mut BpfProgram),
    close: unsafe extern "C" fn(*mut c_void),
    /// Kept so the functions stay mapped; never unloaded.
    _lib: Library,
}

/// Libraries tried so far, by name. The lock also serialises `pcap_compile`, which is
/// not thread-safe before libpcap 1.8.
static LIBPCAP: Mutex<Vec<(String, Option<&'static Libpcap>)>> = Mutex::new(Vec::new());

fn load_libpcap(name: &str) -> Option<&'static Libpcap> {
    // SAFETY: loading libpcap runs no initialisers with preconditions; the symbols are
    // declared with the signatures of pcap/pcap.h (stable since libpcap 0.4).
    unsafe {
        let lib = Library::new(name).ok()?;
        let pcap = Libpcap {
            name: Box::leak(name.to_string().into_boxed_str()),
            open_dead: *lib.get(b"pcap_open_dead\0").ok()?,
            compile: *lib.get(b"pcap_compile\0").ok()?,
            geterr: *lib.get(b"pcap_geterr\0").ok()?,
            freecode: *lib.get(b"pcap_freecode\0").ok()?,
            close: *lib.get(b"pcap_close\0").ok()?,
            _lib: lib,
        };
        Some(Box::leak(Box::new(pcap)))
    }
}

/// None when no library in `names` loads; otherwise what it made of `expr`.
fn libpcap_compile(expr: &str, snaplen: u32, names: &[&str]) -> Option<Result<(Vec<BpfInsn>, String), FilterError>> {
    let mut cache = LIBPCAP.lock().unwrap_or_else(|e| e.into_inner());
    let pcap = names.iter().find_map(|name| match cache.iter().find(|(n, _)| n == name) {
        Some((_, loaded)) => *loaded,
        None => {
            let loaded = load_libpcap(name);
            cache.push((name.to_string(), loaded));
            loaded
        }
    })?;
    let Ok(c_expr) = CString::new(expr) else {
        return Some(Err(refused(expr, pcap.name, "the expression contains a NUL byte".into())));
    };
    let failed = |message: &str| FilterError::Compiler {
        expr: expr.into(),
        compiler: pcap.name.into(),
        message: message.into(),
    };
    // SAFETY: the handle is checked for NULL and closed once; the program is read only
    // after pcap_compile succeeded, copied, then freed; the error string is copied
    // before the handle that owns it is closed. The cache lock is held throughout.
    let result = unsafe {
        let p = (pcap.open_dead)(DLT_LINUX_SLL, snaplen as c_int);
        if p.is_null() {
            return Some(Err(failed("pcap_open_dead returned no handle")));
        }
        let mut prog = BpfProgram { bf_len: 0, bf_insns: std::ptr::null_mut() };
        let result = if (pcap.compile)(p, &mut prog, c_expr.as_ptr(), 1, PCAP_NETMASK_UNKNOWN) != 0 {
            let err = (pcap.geterr)(p);
            let message =
                if err.is_null() { String::new() } else { CStr::from_ptr(err).to_string_lossy().into_owned() };
            Err(refused(expr, pcap.name, message))
        } else if prog.bf_insns.is_null() {
            Err(failed("pcap_compile returned an empty program"))
        } else {
            let insns = std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize).to_vec();
            (pcap.freecode)(&mut prog);
            Ok((insns, pcap.name.to_string()))
        };
        (pcap.close)(p);
        result
    };
    Some(result)
}

// ---- tcpdump -ddd ----

fn find_tcpdump(dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    // Relative PATH entries (and empty ones, meaning ".") are skipped: snap runs as root.
    dirs.iter()
        .filter(|d| d.is_absolute())
        .map(|d| d.join("tcpdump"))
        .find(|p| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

fn tcpdump_compile(path: &Path, expr: &str, snaplen: u32, timeout: Duration) -> Result<Vec<BpfInsn>, FilterError> {
    let failed = |message: String| FilterError::Compiler { expr: expr.into(), compiler: TCPDUMP.into(), message };
    // -y with no -i: tcpdump compiles against pcap_open_dead, opening no interface.
    let mut child = Command::new(path)
        .args(["-ddd", "-y", "LINUX_SLL", "-s", &snaplen.to_string(), "--", expr])
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", path.display())))?;
    // Read both pipes while waiting, so a full pipe cannot stall tcpdump.
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("it did not finish within {:?} and was stopped", timeout)));
            }
            Err(e) => return Err(failed(format!("waiting for it failed: {e}"))),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if !status.success() {
        let said: Vec<&str> =
            err.lines().map(|l| l.trim().trim_start_matches("tcpdump: ")).filter(|l| !l.is_empty()).collect();
        return match status.code() {
            Some(_) if !said.is_empty() => Err(refused(expr, TCPDUMP, said.join("; "))),
            _ => Err(failed(format!("it exited with {status}"))),
        };
    }
    parse_ddd(&out).map_err(|e| failed(format!("its output was not understood: {e}")))
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(1 << 20).read_to_string(&mut text);
        }
        text
    })
}

/// Parses `-ddd` output: the instruction count, then `code jt jf k` per line, in decimal.
fn parse_ddd(text: &str) -> Result<Vec<BpfInsn>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let count = lines.next().ok_or("it printed nothing")?;
    let count: usize = count.parse().map_err(|_| format!("`{count}` is not an instruction count"))?;
    let program = lines
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("`{line}` is not an instruction");
            match f.as_slice() {
                [code, jt, jf, k] => Ok(BpfInsn {
                    code: code.parse().map_err(|_| bad())?,
                    jt: jt.parse().map_err(|_| bad())?,
                    jf: jf.parse().map_err(|_| bad())?,
                    k: k.parse().map_err(|_| bad())?,
                }),
                _ => Err(bad()),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if program.len() != count {
        return Err(format!("it announced {count} instructions and printed {}", program.len()));
    }
    Ok(program)
}

// ---- from the LINUX_SLL view to the cooked socket's ----

/// Rewrites a LINUX_SLL program for the kernel filter of a cooked socket; `keep` is
/// what an accepted packet keeps (snaplen - 16).
fn translate(expr: &str, raw: &[BpfInsn], keep: u32) -> Result<Vec<BpfInsn>, FilterError> {
    let unsupported = |reason: String| FilterError::Unsupported { expr: expr.into(), reason };
    let mut out = Vec::with_capacity(raw.len() + 2);
    let mut at = Vec::with_capacity(raw.len()); // where each instruction of `raw` lands
    for (i, &ins) in raw.iter().enumerate() {
        at.push(out.len());
        let mut ins = ins;
        let (cls, md) = (class(ins.code), mode(ins.code));
        match (cls, md) {
            (RET, _) if ins.code & RET_A != 0 => {
                return Err(unsupported(format!("instruction {i} returns a computed length")));
            }
            (RET, _) if ins.k != 0 => ins.k = keep,
            // An ancillary load already (`ifindex`): the kernel's, kept as libpcap does.
            (LD, ABS) if ins.k >= bpf::SKF_AD_OFF => {}
            (LD | LDX, ABS) if ins.k >= SLL_HDR_LEN => ins.k -= SLL_HDR_LEN,
            (LD, ABS) if size(ins.code) == H && ins.k == 0 => ins.k = bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE,
            (LD, ABS) if size(ins.code) == H && ins.k == 14 => ins.k = bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL,
            (LD | LDX, ABS) => {
                let n = match size(ins.code) {
                    W => 4,
                    H => 2,
                    _ => 1,
                };
                let detail = format!(
                    "it reads {n} byte(s) at offset {} of the 16-byte cooked header, of which the kernel filter sees only the packet type and protocol",
                    ins.k
                );
                return Err(FilterError::LinkLayer { expr: expr.into(), detail });
            }
            // Relative to X: only a constant part past the header can be moved; X itself
            // may hold an offset that includes the header (libpcap's `geneve` does).
            (LD | LDX, IND | MSH) if ins.k >= SLL_HDR_LEN => ins.k -= SLL_HDR_LEN,
            (LD | LDX, IND | MSH) => {
                return Err(unsupported(format!(
                    "instruction {i} reads at an offset computed at run time from the start of the cooked header"
                )));
            }
            (LDX, LEN) => return Err(unsupported(format!("instruction {i} loads the packet length into X"))),
            _ => {}
        }
        out.push(ins);
        if (cls, md) == (LD, LEN) {
            // pcap's length counts the cooked header; the kernel's does not.
            out.push(BpfInsn { code: ALU | bpf::ADD | bpf::K, jt: 0, jf: 0, k: SLL_HDR_LEN });
        }
    }
    // Re-aim jumps at where their targets landed.
    for (i, ins) in raw.iter().enumerate().filter(|(_, ins)| class(ins.code) == JMP) {
        let to = |skip: u64| -> Option<u64> {
            let target = *at.get(usize::try_from(i as u64 + 1 + skip).ok()?)?;
            (target as u64).checked_sub(at[i] as u64 + 1)
        };
        let bad = || {
            unsupported(format!("instruction {i} jumps backwards or past the end (libpcap emits backward jumps for `protochain`; the kernel takes none)"))
        };
        let new = &mut out[at[i]];
        if op(ins.code) == bpf::JA {
            new.k = to(u64::from(ins.k)).and_then(|k| u32::try_from(k).ok()).ok_or_else(bad)?;
        } else {
            let too_far = || unsupported(format!("instruction {i} jumps too far once lengths are corrected"));
            new.jt = u8::try_from(to(u64::from(ins.jt)).ok_or_else(bad)?).map_err(|_| too_far())?;
            new.jf = u8::try_from(to(u64::from(ins.jf)).ok_or_else(bad)?).map_err(|_| too_far())?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bpf::testing::{v4, v6, Pkt, A, ACK, H1, S, SYN};
    use crate::capture::bpf::{run, Aux};

    const SNAPLEN: u32 = 144;
    const KEEP: u32 = SNAPLEN - 16;

    fn libpcap(expr: &str) -> Result<Compiled, FilterError> {
        compile_with(expr, SNAPLEN, &Compilers { libpcap: &LIBPCAP_NAMES, tcpdump_dirs: &[], timeout: TCPDUMP_TIMEOUT })
    }

    fn tcpdump(expr: &str) -> Result<Compiled, FilterError> {
        let dirs = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from);
        compile_with(expr, SNAPLEN, &Compilers { libpcap: &[], tcpdump_dirs: &dirs, timeout: TCPDUMP_TIMEOUT })
    }

    /// Both paths; a missing compiler fails the test (CI installs libpcap0.8 and tcpdump).
    fn both_results(expr: &str) -> [Result<Compiled, FilterError>; 2] {
        [(libpcap(expr), "libpcap"), (tcpdump(expr), "tcpdump")].map(|(r, what)| match r {
            Err(FilterError::NoCompiler) => {
                panic!("{what} must be installed for this test (apt-get install libpcap0.8 tcpdump)")
            }
            Ok(c) if !c.compiler.starts_with(what) => panic!("{what} was asked for, {} answered", c.compiler),
            r => r,
        })
    }

    fn both(expr: &str) -> [Compiled; 2] {
        both_results(expr).map(|r| r.unwrap_or_else(|e| panic!("`{expr}`: {e}")))
    }

    fn both_err(expr: &str) -> [FilterError; 2] {
        both_results(expr).map(|r| r.expect_err(expr))
    }

    fn packets() -> Vec<Pkt> {
        vec![
            v4("v4 tcp syn :80", 6, (A, 40000, S, 80), SYN, 0, 0),
            v4("v4 tcp 10.1.1.1:80 ack", 6, (H1, 80, A, 40000), ACK, 0, 0),
            v4("v4 tcp :443", 6, (A, 40000, S, 443), ACK, 0, 0),
            v4("v4 tcp :22", 6, (A, 40000, S, 22), ACK, 0, 0),
            v4("v4 tcp options :80", 6, (A, 40000, S, 80), ACK, 2, 0),
            v4("v4 tcp later fragment", 6, (A, 40000, S, 80), ACK, 0, 0x00b9),
            v4("v4 udp :53", 17, (A, 5353, S, 53), 0, 0, 0),
            v4("v4 udp 10.1.1.1:80", 17, (H1, 80, A, 40000), 0, 0, 0),
            v4("v4 udp 10.1.1.1:22", 17, (H1, 22, A, 40000), 0, 0, 0),
            v6("v6 tcp syn :80", 6, 40000, 80, SYN),
            v6("v6 tcp :22", 6, 40000, 22, ACK),
            v6("v6 udp 53:", 17, 53, 40000, 0),
            Pkt { name: "arp", bytes: vec![0, 1, 8, 0, 6, 4, 0, 1], aux: Aux { protocol: 0x0806, ..Aux::default() } },
        ]
    }

    /// What tcpdump's semantics say, per packet of `packets()` in order.
    const CASES: [(&str, &str); 6] = [
        ("tcp port 80", "1100100001000"),
        ("udp and port 53", "0000001000010"),
        ("host 10.1.1.1 and port 80", "0100000100000"),
        ("ip6 and tcp", "0000000001100"),
        // tcp[] is IPv4 only in libpcap.
        ("tcp[tcpflags] & tcp-syn != 0", "1000000000000"),
        ("not port 22", "1110111101011"),
    ];

    #[test]
    fn filter_programs_accept_what_tcpdump_would_on_both_paths() {
        let pkts = packets();
        for (expr, want) in CASES {
            let [lib, dump] = both(expr);
            assert_eq!([&lib.compiler[..11], &dump.compiler[..]], ["libpcap.so.", "tcpdump -ddd"]);
            for (p, w) in pkts.iter().zip(want.chars()) {
                let want = if w == '1' { KEEP } else { 0 };
                let got = [run(&lib.program, &p.bytes, &p.aux), run(&dump.program, &p.bytes, &p.aux)];
                assert_eq!(got, [want; 2], "`{expr}` on {} (libpcap, tcpdump)", p.name);
            }
        }
    }

    #[test]
    fn filter_cooked_header_fields_and_length_follow_pcap_semantics() {
        let p = v4("v4 tcp syn :80", 6, (A, 40000, S, 80), SYN, 0, 0);
        let out = Aux { pkttype: 4, ..p.aux };
        for c in both("inbound") {
            assert_eq!([run(&c.program, &p.bytes, &p.aux), run(&c.program, &p.bytes, &out)], [KEEP, 0]);
        }
        for c in both("ip and ifindex 3") {
            let on = |ifindex| run(&c.program, &p.bytes, &Aux { ifindex, ..p.aux });
            assert_eq!([on(3), on(2)], [KEEP, 0]);
        }
        // pcap's length counts the 16-byte header: this 40-byte packet is 56 long.
        // Jumps across the instruction added after `ld len` still land right.
        let udp = v4("v4 udp", 17, (A, 5353, S, 53), 0, 0, 0);
        for expr in ["greater 56", "udp or greater 56"] {
            for c in both(expr) {
                let on = |b: &[u8]| run(&c.program, b, &p.aux);
                assert_eq!([on(&p.bytes), on(&p.bytes[..39])], [KEEP, 0], "{expr} {c:?}");
                assert_eq!(run(&c.program, &udp.bytes, &udp.aux), if expr == "greater 56" { 0 } else { KEEP });
            }
        }
    }

    #[test]
    fn filter_syntax_errors_say_what_the_compiler_said() {
        let [lib, dump] = both_err("port potato");
        for (e, who) in [(lib, "libpcap.so."), (dump, "tcpdump -ddd said: unknown port 'potato'")] {
            assert!(matches!(e, FilterError::Syntax { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.starts_with("the filter `port potato` is not valid: ") && text.contains(who), "{text}");
        }
    }

    #[test]
    fn filter_link_layer_fields_are_refused_with_the_reason() {
        for expr in ["ether host 00:11:22:33:44:55", "ether[0] = 1", "link[6:2] = 1"] {
            for e in both_err(expr) {
                assert!(matches!(e, FilterError::LinkLayer { .. }), "{expr}: {e:?}");
                let text = e.to_string();
                assert!(text.contains("reads link-layer fields (like `ether host`) that a cooked capture of all interfaces does not have"), "{text}");
            }
        }
        for e in both_err("ip6 protochain 6") {
            assert!(e.to_string().contains("jumps backwards"), "{e}");
        }
    }

    #[test]
    fn filter_without_any_compiler_says_what_is_needed() {
        let none = Compilers { libpcap: &["libpcap-absent.so.9"], tcpdump_dirs: &[], timeout: TCPDUMP_TIMEOUT };
        let e = compile_with("tcp port 80", SNAPLEN, &none).unwrap_err();
        assert!(matches!(e, FilterError::NoCompiler));
        assert_eq!(e.to_string(), "the filter needs libpcap (libpcap.so.1 or libpcap.so.0.8) or tcpdump, and neither was found; capture without --filter works without them");
        assert!(matches!(compile_with("tcp", 16, &none), Err(FilterError::Snaplen(16))));
    }

    #[test]
    fn filter_tcpdump_that_hangs_is_stopped() {
        let dir = std::env::temp_dir().join(format!("snap-filter-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("tcpdump");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let with =
            Compilers { libpcap: &[], tcpdump_dirs: std::slice::from_ref(&dir), timeout: Duration::from_millis(300) };
        // Another test thread forking while the script was being written can hold it
        // open for writing in its child until that child's exec: ETXTBSY, retried.
        let mut e = compile_with("tcp", SNAPLEN, &with).unwrap_err();
        for _ in 0..20 {
            if !e.to_string().contains("Text file busy") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            e = compile_with("tcp", SNAPLEN, &with).unwrap_err();
        }
        let started = Instant::now();
        let e2 = compile_with("tcp", SNAPLEN, &with).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.to_string(), e2.to_string());
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn filter_translation_moves_offsets_and_returns() {
        let i = |code, jt, jf, k| BpfInsn { code, jt, jf, k };
        // `ip[0] = 0x45` as LINUX_SLL: protocol at 14, the IP header at 16.
        let raw = [
            i(0x28, 0, 0, 14),
            i(0x15, 0, 3, 0x800),
            i(0x30, 0, 0, 16),
            i(0x15, 0, 1, 0x45),
            i(6, 0, 0, 144),
            i(6, 0, 0, 0),
        ];
        let mut want = raw;
        (want[0].k, want[2].k, want[4].k) = (bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL, 0, 64);
        assert_eq!(translate("x", &raw, 64).unwrap(), want);
    }

    #[test]
    fn filter_ddd_output_is_parsed_strictly() {
        assert_eq!(parse_ddd("1\n6 0 0 144\n"), Ok(vec![BpfInsn { code: 6, jt: 0, jf: 0, k: 144 }]));
        assert!(parse_ddd("2\n6 0 0 144\n").is_err());
        assert!(parse_ddd("1\n6 0 0\n").is_err());
        assert!(parse_ddd("").is_err());
    }
}
