//! lsof's default column listing, as sos reports keep it, read into [`OpenFile`] records.
//!
//! sos has run lsof under several names: the filesys plugin's `lsof -b +M -n -l -P`
//! (`sos_commands/filesys/lsof_-b_M_-n_-l_-P`), the process plugin's `lsof -b +M -n -l -c
//! ''` (sos 4.0, `sos_commands/process/lsof_-b_M_-n_-l_-c`), `lsof +M -n -l -c ''` (sos
//! 4.2, linked as `lsof` at the top of the report) and, with its `lsof-threads` option,
//! `lsof +M -n -l`; other tools keep plain `lsof`. They all print the same table:
//!
//! ```text
//! COMMAND      PID    TID TASKCMD       USER   FD      TYPE             DEVICE  SIZE/OFF     NODE NAME
//! systemd        1                         0  cwd       DIR              252,2      4096  3411983 /
//! accounts-    252    259 gmain            0    3u  a_inode               0,14         0    10385 [eventfd]
//! ```
//!
//! The columns are read by position under the header, not by splitting on whitespace,
//! because several may be blank (TID, TASKCMD, TYPE, DEVICE, SIZE/OFF, NODE) and NAME is
//! free text. lsof sizes every column to its widest entry before printing, so the layout
//! is exact: COMMAND and TASKCMD are left-aligned and start where their titles start;
//! PID, TID, USER, TYPE, DEVICE, SIZE/OFF and NODE are right-aligned and end where their
//! titles end; the FD column holds the descriptor right-aligned under `FD` followed by
//! two characters, the access mode (`r`, `w`, `u`, or `-` when only a lock is known) and
//! the lock (`r`, `R`, `w`, `W`, `u`, `U`, `x`, `X`, `N`), either of which may be a
//! space; NAME starts where its title starts and runs to the end of the line. Positions
//! are bytes, as lsof counts them.
//!
//! Quirks handled:
//! - The header may be preceded by spaces (384 of them in a sos 4.2 report's `lsof -b +M
//!   -n -l -P`), while the data lines are not: positions are taken from the header with
//!   those removed.
//! - lsof's warnings (`lsof: WARNING: can't stat() ...`, `lsof: avoiding stat(/): -b was
//!   specified.`, and the indented `Output information may be incomplete.`) come before
//!   the header, and can appear among the lines: they are skipped.
//! - lsof 4.90 and later repeat a process's files for each of its other threads, with
//!   TID and TASKCMD filled in. Those lines are skipped (and counted in
//!   [`Listing::task_lines`]) so that per-process descriptor counts are not multiplied.
//! - COMMAND is lsof's (by default the first 9 bytes of the command name), with the
//!   spaces lsof prints as `\x20` turned back into spaces; other escapes are kept.
//! - With `-l`, or for a uid with no password entry, USER is a number: it goes to
//!   `uid` and `user` stays empty. A name goes to `user` and `uid` stays 0, which is
//!   indistinguishable from root: the record has no way to say "uid unknown".
//! - DEVICE is kept only when it is `major,minor`. For IPv4 and IPv6 sockets lsof puts
//!   the socket's inode in DEVICE and the protocol (TCP, UDP) in NODE; the inode is read
//!   from there. A unix socket's DEVICE is a kernel address, which is dropped.
//! - SIZE/OFF is a size (a plain number, kept for REG, DIR and BLK as snap's own scan
//!   does) or an offset (`0t123` in decimal, or `0x1f4a` in hex once it has more than
//!   8 digits).
//! - `target` holds lsof's NAME as printed (`/var/log/x (deleted)`, `type=STREAM`,
//!   `127.0.0.1:3306 (LISTEN)`, `pipe`), not the kernel's link target (`socket:[123]`,
//!   `pipe:[456]`) that snap's own scan records. `name` is NAME without ` (deleted)`.
//! - `deleted` is set for a NAME ending in ` (deleted)` and for lsof's `DEL` descriptor
//!   (a mapped file that was deleted, whose NAME lsof prints without the suffix), as
//!   snap's scan marks such mappings.
//! - Lines lsof prints when it cannot read something (`cwd unknown /proc/1/cwd
//!   (readlink: Permission denied)`, `NOFD /proc/1/fd (opendir: Permission denied)`)
//!   get the reason in `error`, as snap's own scan does.
//! - lsof's default listing has no link count (`+L` adds an NLINK column, read when
//!   present). Without it `nlink` is 0 for a deleted file and for one lsof could not
//!   read (TYPE `unknown` or blank), and 1 otherwise: the same guess snap's scan makes
//!   for a mapped file it cannot stat.
//! - Not in the listing at all, so left empty: `flags` (fdinfo), and `offset` for the
//!   descriptors whose SIZE/OFF shows a size.
//!
//! A line that does not fit the layout is skipped and its number kept in
//! [`Listing::unreadable`]; text with no header, or whose every line is unreadable, is
//! an error naming the line.

use super::{excerpt, fields};
use crate::scan::OpenFile;

/// What [`parse_listing`] read: the open files of processes, and what it skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// One record per line of a process (not of a thread), in the listing's order.
    pub files: Vec<OpenFile>,
    /// Lines with a TID: lsof's repetition of a process's files for each of its threads.
    pub task_lines: usize,
    /// The 1-based numbers of lines that could not be read.
    pub unreadable: Vec<usize>,
}

/// Reads lsof's column listing into one record per open file of a process, and says
/// how many thread lines were skipped and which lines could not be read. See the
/// module documentation for the format and what each field holds.
pub fn parse_listing(text: &str) -> Result<Listing, String> {
    let mut out = Listing::default();
    let mut layout: Option<Layout> = None;
    let mut lines = 0;
    // Whether the line before was one of lsof's messages, which an indented line continues.
    let mut in_warning = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        lines = n;
        if let Some(l) = Layout::from_header(line) {
            layout = Some(l);
            in_warning = false;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("lsof: ") || (in_warning && line.starts_with(char::is_whitespace)) {
            in_warning = true;
            continue;
        }
        in_warning = false;
        let Some(layout) = &layout else {
            return Err(format!(
                "line {n}: not lsof output: expected the header `COMMAND PID ... NAME`, found `{}`",
                excerpt(line)
            ));
        };
        match layout.read(line) {
            Some(Line::File(f)) => out.files.push(*f),
            Some(Line::Task) => out.task_lines += 1,
            None => out.unreadable.push(n),
        }
    }
    if layout.is_none() {
        return Err(format!("line {lines}: the text ends without lsof's header `COMMAND PID ... NAME`"));
    }
    if out.files.is_empty() && out.task_lines == 0 {
        if let Some(&n) = out.unreadable.first() {
            return Err(format!("line {n}: not a line of lsof's listing"));
        }
    }
    Ok(out)
}

/// The columns lsof can print, by title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Command,
    Pid,
    Tid,
    TaskCmd,
    User,
    Fd,
    Type,
    Device,
    SizeOff,
    Nlink,
    Node,
    /// Columns not read: ZONE and SECURITY-CONTEXT (left-aligned), PPID, PGID, ...
    Other,
}

/// One column of the header: its title's byte span and how lsof aligns its values.
#[derive(Debug, Clone, Copy)]
struct Column {
    col: Col,
    start: usize,
    end: usize,
    left: bool,
}

/// The header's columns, and where NAME starts.
#[derive(Debug, Clone)]
struct Layout {
    columns: Vec<Column>,
    name_start: usize,
}

/// The fields of one line, by column.
#[derive(Default)]
struct Values<'a> {
    command: Option<&'a str>,
    pid: Option<&'a str>,
    tid: Option<&'a str>,
    user: Option<&'a str>,
    fd: Option<&'a str>,
    kind: Option<&'a str>,
    device: Option<&'a str>,
    size_off: Option<&'a str>,
    nlink: Option<&'a str>,
    node: Option<&'a str>,
}

impl<'a> Values<'a> {
    /// Where the value of `col` goes; None for the columns not read.
    fn slot(&mut self, col: Col) -> Option<&mut Option<&'a str>> {
        Some(match col {
            Col::Command => &mut self.command,
            Col::Pid => &mut self.pid,
            Col::Tid => &mut self.tid,
            Col::User => &mut self.user,
            Col::Fd => &mut self.fd,
            Col::Type => &mut self.kind,
            Col::Device => &mut self.device,
            Col::SizeOff => &mut self.size_off,
            Col::Nlink => &mut self.nlink,
            Col::Node => &mut self.node,
            Col::TaskCmd | Col::Other => return None,
        })
    }
}

/// A line read under a header.
enum Line {
    File(Box<OpenFile>),
    /// A thread's repetition of its process's line.
    Task,
}

impl Layout {
    /// The layout of a header line (`COMMAND PID ... NAME`), or None if `line` is not one.
    fn from_header(line: &str) -> Option<Layout> {
        let header = line.trim_start();
        let titles: Vec<(usize, usize, &str)> = fields(header).collect();
        let (first, last) = (titles.first()?, titles.last()?);
        if first.2 != "COMMAND" || titles.get(1)?.2 != "PID" || last.2 != "NAME" {
            return None;
        }
        if !titles.iter().any(|t| t.2 == "FD") {
            return None;
        }
        let columns = titles[..titles.len() - 1]
            .iter()
            .map(|&(start, end, title)| {
                let (col, left) = match title {
                    "COMMAND" => (Col::Command, true),
                    "PID" => (Col::Pid, false),
                    "TID" => (Col::Tid, false),
                    "TASKCMD" => (Col::TaskCmd, true),
                    "USER" => (Col::User, false),
                    "FD" => (Col::Fd, false),
                    "TYPE" => (Col::Type, false),
                    "DEVICE" => (Col::Device, false),
                    "SIZE/OFF" | "SIZE" | "OFF" => (Col::SizeOff, false),
                    "NLINK" => (Col::Nlink, false),
                    "NODE" => (Col::Node, false),
                    "ZONE" | "SECURITY-CONTEXT" => (Col::Other, true),
                    _ => (Col::Other, false),
                };
                Column { col, start, end, left }
            })
            .collect();
        Some(Layout { columns, name_start: last.0 })
    }

    /// The column a field at `start..end` belongs to: a left-aligned column starting
    /// there, or a right-aligned one ending there (FD: up to two bytes later).
    fn column_of(&self, start: usize, end: usize) -> Option<usize> {
        self.columns.iter().position(|c| {
            if c.left {
                c.start == start
            } else if c.col == Col::Fd {
                (c.end..=c.end + 2).contains(&end)
            } else {
                c.end == end
            }
        })
    }

    /// Reads one line; None when it does not fit the layout.
    fn read(&self, line: &str) -> Option<Line> {
        // NAME starts right after a space at its title's position.
        let (head, name) = match line.get(..self.name_start) {
            Some(head) if line.len() > self.name_start => {
                if !head.ends_with(' ') {
                    return None;
                }
                (head, line.get(self.name_start..)?)
            }
            Some(_) => (line, ""),
            // A character straddles NAME's position.
            None if line.len() > self.name_start => return None,
            None => (line, ""),
        };
        let mut v = Values::default();
        let mut taken = vec![false; self.columns.len()];
        for (start, end, value) in fields(head) {
            let c = self.column_of(start, end)?;
            if std::mem::replace(&mut taken[c], true) {
                return None;
            }
            if let Some(slot) = v.slot(self.columns[c].col) {
                *slot = Some(value);
            }
        }
        let Values { command, pid, tid, user, fd, kind, device, size_off, nlink, node } = v;
        let pid: u32 = pid?.parse().ok()?;
        let (command, user, fd) = (command?, user?, fd?);
        if tid.is_some() {
            return Some(Line::Task);
        }
        let kind = kind.unwrap_or_default();
        let (fd, mode) = split_fd(fd);
        let mut f = OpenFile {
            pid,
            command: command.replace("\\x20", " "),
            fd: fd.to_string(),
            mode: mode.to_string(),
            kind: kind.to_string(),
            target: name.to_string(),
            ..Default::default()
        };
        match user.parse() {
            Ok(uid) => f.uid = uid,
            Err(_) => f.user = user.to_string(),
        }
        let device = device.unwrap_or_default();
        if is_major_minor(device) {
            f.device = device.to_string();
        }
        match node.map(str::parse) {
            Some(Ok(inode)) => f.inode = inode,
            // IPv4/IPv6 sockets: DEVICE holds the inode, NODE the protocol.
            _ if matches!(kind, "IPv4" | "IPv6") => f.inode = device.parse().unwrap_or(0),
            _ => {}
        }
        if let Some(v) = size_off {
            if let Some(off) = v.strip_prefix("0t") {
                f.offset = off.parse().ok();
            } else if let Some(off) = v.strip_prefix("0x") {
                f.offset = u64::from_str_radix(off, 16).ok();
            } else if matches!(kind, "REG" | "DIR" | "BLK") {
                f.size = v.parse().ok();
            }
        }
        f.deleted = name.ends_with(" (deleted)") || f.fd == "DEL";
        f.name = name.strip_suffix(" (deleted)").unwrap_or(name).to_string();
        if matches!(kind, "unknown" | "") {
            f.error = failure(name).map(str::to_string);
        }
        f.nlink = match nlink.map(str::parse) {
            Some(Ok(n)) => n,
            _ => u64::from(!f.deleted && !matches!(kind, "unknown" | "")),
        };
        Some(Line::File(Box::new(f)))
    }
}

/// Splits lsof's FD column (`3u`, `10rW`, `cwd`, `DEL`, `0`) into the descriptor and
/// its access mode; the lock character is dropped.
fn split_fd(fd: &str) -> (&str, &str) {
    let digits = fd.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (fd, "");
    }
    let (num, rest) = fd.split_at(digits);
    let mode = rest.get(..1).filter(|m| matches!(*m, "r" | "w" | "u")).unwrap_or_default();
    (num, mode)
}

/// Whether `s` is a device as `major,minor`.
fn is_major_minor(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once(',').is_some_and(|(a, b)| digits(a) && digits(b))
}

/// The reason in a NAME lsof prints for what it could not read:
/// `/proc/1/cwd (readlink: Permission denied)` gives `Permission denied`.
fn failure(name: &str) -> Option<&str> {
    let inner = name.strip_suffix(')')?;
    let (_, inner) = inner.rsplit_once(" (")?;
    let (_call, reason) = inner.split_once(": ")?;
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<OpenFile>, String> {
        parse_listing(text).map(|l| l.files)
    }

    /// sos 4.2 on Ubuntu 20.04 (lsof 4.93.2), `sos_commands/filesys/lsof_-b_M_-n_-l_-P` of
    /// the vault sos report: the header is preceded by 384 spaces (added below), and the
    /// TID/TASKCMD columns are there.
    const VAULT_HEADER: &str =
        "COMMAND      PID    TID TASKCMD       USER   FD      TYPE             DEVICE  SIZE/OFF       NODE NAME";
    const VAULT_LINES: &str = r"systemd        1                         0  cwd       DIR              252,2      4096    3411983 /
systemd        1                         0  DEL       REG              252,2              4593067 /usr/lib/x86_64-linux-gnu/libuuid.so.1.3.0
systemd        1                         0   18u     unix 0x0000000000000000       0t0      52645 /run/systemd/private type=STREAM
systemd-r    187                       101   12u     IPv4              62669       0t0        UDP 127.0.0.53:53 
systemd-r    187                       101   13u     IPv4              62670       0t0        TCP 127.0.0.53:53 (LISTEN)
accounts-    252    259 gmain            0    3u  a_inode               0,14         0      10385 [eventfd]
corosync     256                         0    5r     FIFO               0,13       0t0      81954 pipe
mysqlrout    302    369 MDC\x20Ma      997  txt       REG              252,2     31208    3681162 /usr/bin/mysqlrouter
agetty       311                         0  txt       REG              252,2     69000    4720767 /usr/sbin/agetty (deleted)
";

    fn vault() -> Listing {
        parse_listing(&format!("{:384}{VAULT_HEADER}\n{VAULT_LINES}", "")).unwrap()
    }

    #[test]
    fn header_after_spaces_and_thread_lines_from_vault() {
        let l = vault();
        assert_eq!((l.files.len(), l.task_lines, l.unreadable.len()), (7, 2, 0));
        let cwd = &l.files[0];
        assert_eq!((cwd.pid, cwd.command.as_str(), cwd.uid, cwd.user.as_str()), (1, "systemd", 0, ""));
        assert_eq!((cwd.fd.as_str(), cwd.mode.as_str(), cwd.kind.as_str()), ("cwd", "", "DIR"));
        assert_eq!((cwd.device.as_str(), cwd.size, cwd.offset, cwd.inode), ("252,2", Some(4096), None, 3411983));
        assert_eq!((cwd.target.as_str(), cwd.name.as_str(), cwd.deleted, cwd.nlink), ("/", "/", false, 1));
        // A deleted library still mapped: no size, NAME without the suffix.
        let del = &l.files[1];
        assert_eq!((del.fd.as_str(), del.size, del.inode, del.deleted, del.nlink), ("DEL", None, 4593067, true, 0));
        assert_eq!(del.name, "/usr/lib/x86_64-linux-gnu/libuuid.so.1.3.0");
        let unix = &l.files[2];
        assert_eq!((unix.fd.as_str(), unix.mode.as_str(), unix.kind.as_str()), ("18", "u", "unix"));
        assert_eq!((unix.device.as_str(), unix.offset, unix.size, unix.inode), ("", Some(0), None, 52645));
        assert_eq!(unix.target, "/run/systemd/private type=STREAM");
    }

    #[test]
    fn inet_sockets_take_their_inode_from_device() {
        let l = vault();
        let (udp, tcp) = (&l.files[3], &l.files[4]);
        assert_eq!(
            (udp.pid, udp.uid, udp.kind.as_str(), udp.inode, udp.device.as_str()),
            (187, 101, "IPv4", 62669, "")
        );
        // lsof ends a UDP socket's NAME with the space it puts before TCP's state.
        assert_eq!(udp.target, "127.0.0.53:53 ");
        assert_eq!((tcp.inode, tcp.target.as_str()), (62670, "127.0.0.53:53 (LISTEN)"));
        let pipe = &l.files[5];
        assert_eq!((pipe.fd.as_str(), pipe.mode.as_str(), pipe.kind.as_str(), pipe.inode), ("5", "r", "FIFO", 81954));
        let agetty = &l.files[6];
        assert_eq!((agetty.fd.as_str(), agetty.size, agetty.deleted, agetty.nlink), ("txt", Some(69000), true, 0));
        assert_eq!((agetty.name.as_str(), agetty.target.as_str()), ("/usr/sbin/agetty", "/usr/sbin/agetty (deleted)"));
    }

    /// sos 4.0 (this VM's /tmp/sosout report), `sos_commands/process/lsof_-b_M_-n_-l_-c`:
    /// warnings first, then a process whose files lsof could not read.
    const VM: &str = "lsof: avoiding readlink(/proc): -b was specified.
lsof: avoiding stat(/proc): -b was specified.
lsof: WARNING: can't stat() proc file system /proc
      Output information may be incomplete.
COMMAND     PID     USER   FD      TYPE DEVICE SIZE/OFF     NODE NAME
process_a     1        0  cwd   unknown                          /proc/1/cwd (readlink: Permission denied)
process_a     1        0    0   unknown                          /proc/1/fd/0 (readlink: Permission denied)
memfd:sea 27571        0  txt       REG    0,1  1531760     1024 /memfd:sealed-91173221a7ea (deleted)
memfd:sea 27571        0    0r     FIFO   0,15      0t0  1973544 pipe
";

    #[test]
    fn warnings_then_unreadable_and_memfd_lines_from_sos_4_0() {
        let f = parse(VM).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(
            (f[0].fd.as_str(), f[0].kind.as_str(), f[0].error.as_deref()),
            ("cwd", "unknown", Some("Permission denied"))
        );
        assert_eq!(
            (f[0].name.as_str(), f[0].nlink, f[0].device.as_str()),
            ("/proc/1/cwd (readlink: Permission denied)", 0, "")
        );
        // A descriptor lsof could not read has neither access mode nor lock.
        assert_eq!((f[1].fd.as_str(), f[1].mode.as_str()), ("0", ""));
        assert_eq!(
            (f[2].command.as_str(), f[2].pid, f[2].device.as_str(), f[2].size),
            ("memfd:sea", 27571, "0,1", Some(1531760))
        );
        assert!(f[2].deleted && f[2].name == "/memfd:sealed-91173221a7ea");
        assert_eq!((f[3].fd.as_str(), f[3].offset, f[3].inode, f[3].error.as_deref()), ("0", Some(0), 1973544, None));
    }

    /// jc's fixture of plain `lsof` as a user on CentOS 7.7 (lsof 4.87): user names, and
    /// `NOFD` with a blank TYPE.
    const CENTOS_USER: &str = "COMMAND    PID  TID    USER   FD      TYPE DEVICE  SIZE/OFF     NODE NAME
systemd      1         root  cwd   unknown                           /proc/1/cwd (readlink: Permission denied)
systemd      1         root NOFD                                     /proc/1/fd (opendir: Permission denied)
";

    #[test]
    fn user_names_and_nofd_from_jc_centos() {
        let f = parse(CENTOS_USER).unwrap();
        assert_eq!((f[0].uid, f[0].user.as_str()), (0, "root"));
        assert_eq!(
            (f[1].fd.as_str(), f[1].kind.as_str(), f[1].error.as_deref()),
            ("NOFD", "", Some("Permission denied"))
        );
        assert_eq!(f[1].target, "/proc/1/fd (opendir: Permission denied)");
    }

    /// This VM (Debian 12, lsof 4.95), `lsof +M -n -l -P -p <pid>` of a process named
    /// `tmux: server`: lsof prints the space as `\x20` and keeps 9 bytes of the name.
    const ESCAPED: &str = r"COMMAND     PID     USER   FD   TYPE DEVICE SIZE/OFF     NODE NAME
tmux:\x20 12907        0  cwd    DIR  254,0     4096 10018819 /tmp/h1cap
";

    #[test]
    fn escaped_space_in_the_command() {
        let f = parse(ESCAPED).unwrap();
        assert_eq!((f[0].command.as_str(), f[0].pid, f[0].inode), ("tmux: ", 12907, 10018819));
    }

    #[test]
    fn offsets_in_hex_and_lock_characters() {
        // lsof prints an offset of more than 8 digits in hex and a lock after the mode;
        // a line of the vault listing with those two columns changed.
        let text = format!("{VAULT_HEADER}\ncorosync     256                         0    5rW    FIFO               0,13 0x5f5e100      81954 pipe\n");
        let f = parse(&text).unwrap();
        assert_eq!((f[0].fd.as_str(), f[0].mode.as_str(), f[0].offset), ("5", "r", Some(100_000_000)));
    }

    #[test]
    fn what_is_not_lsof_is_an_error_naming_the_line() {
        let bad = "\nlsof: WARNING: can't stat() xfs file system /var/lib/origin\n";
        assert_eq!(parse(bad).unwrap_err(), "line 2: the text ends without lsof's header `COMMAND PID ... NAME`");
        assert!(parse("").unwrap_err().starts_with("line 0:"));
        let ps = "  PID TTY          TIME CMD\n    1 ?        00:00:01 systemd\n";
        assert!(parse(ps).unwrap_err().starts_with("line 1: not lsof output"), "{:?}", parse(ps));
        // A header, then only lines that do not fit it.
        let shifted = format!("{VAULT_HEADER}\n x systemd 1 0 cwd DIR 252,2 4096 3411983 /\n");
        assert_eq!(parse(&shifted).unwrap_err(), "line 2: not a line of lsof's listing");
    }

    #[test]
    fn odd_lines_are_skipped_and_counted() {
        let text = format!("{VAULT_HEADER}\n{VAULT_LINES}garbage here\nsystemd 1 0 cwd DIR 252,2 4096 3411983 /\n");
        let l = parse_listing(&text).unwrap();
        assert_eq!((l.files.len(), l.unreadable.clone()), (7, vec![11, 12]));
    }

    /// A corpus file and the four counts expected of it, or None for an error.
    type Expected = (&'static str, Option<(usize, usize, usize, usize)>);

    /// ../shared/corpus/lsof: jc's and insights-core's fixtures. The counts were taken
    /// with awk on the TID column, grep for ` (deleted)` and `DEL`, and grep for
    /// `: ...)`-ended names.
    #[test]
    fn corpus_files() {
        let files = crate::sos::corpus::files("lsof");
        // (file, files, thread lines, deleted, with an error); None: an error is expected.
        let expected: &[Expected] = &[
            ("jc/centos-7.7_lsof.out", Some((510, 128, 0, 404))),
            ("jc/centos-7.7_lsof-sudo.out", Some((1758, 1631, 4, 0))),
            ("jc/ubuntu-18.04_lsof.out", Some((823, 152, 0, 652))),
            ("jc/ubuntu-18.04_lsof-sudo.out", Some((1796, 1057, 1, 0))),
            ("insights-core/lsof.txt", Some((6, 3, 0, 0))),
            ("insights-core/lsof_bad.txt", None),
            ("insights-core/lsof_good_v1.txt", Some((9, 10, 0, 0))),
            ("insights-core/lsof_good_v2.txt", Some((5, 0, 1, 0))),
        ];
        for (name, text) in &files {
            let got = parse_listing(text);
            let Some((_, want)) = expected.iter().find(|(f, _)| f == name) else {
                panic!("{name}: a corpus file without expectations: {got:?}");
            };
            match (want, got) {
                (None, got) => assert!(got.is_err(), "{name}: {got:?}"),
                (Some(want), Ok(l)) => {
                    let deleted = l.files.iter().filter(|f| f.deleted).count();
                    let errors = l.files.iter().filter(|f| f.error.is_some()).count();
                    assert_eq!((l.files.len(), l.task_lines, deleted, errors), *want, "{name}");
                    assert!(l.unreadable.is_empty(), "{name}: {:?}", l.unreadable);
                }
                (Some(_), Err(e)) => panic!("{name}: {e}"),
            }
        }
        assert_eq!(files.len(), expected.len());
        // The one deleted file of insights-core's v2 fixture, a rotated log held open.
        let text = &files.iter().find(|(name, _)| name == "insights-core/lsof_good_v2.txt").unwrap().1;
        let log = parse(text).unwrap().into_iter().find(|f| f.deleted).unwrap();
        assert_eq!((log.pid, log.fd.as_str(), log.mode.as_str()), (772018, "5", "w"));
        assert_eq!((log.size, log.name.as_str()), (Some(151175680), "/var/log/messages-20210221"));
    }

    #[test]
    fn no_panic_on_truncations_and_mutations() {
        let sample = format!("{VM}{:20}{VAULT_HEADER}\n{VAULT_LINES}{ESCAPED}{CENTOS_USER}", "");
        for (i, _) in sample.char_indices() {
            let _ = parse_listing(&sample[..i]);
            let _ = parse_listing(&sample[i..]);
        }
        let pieces: [&[u8]; 6] = [b" ", b"\n", "é".as_bytes(), &[0xff], b"0t", "€ (deleted)".as_bytes()];
        crate::sos::damage::mutations(&sample, &pieces, 0x9e37_79b9_7f4a_7c15, 3000, |text| {
            let _ = parse_listing(text);
        });
    }
}
