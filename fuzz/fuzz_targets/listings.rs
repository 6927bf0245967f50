//! The text parsers of sos reports' listings and of kernel logs never panic.
//!
//! Input: one byte choosing the parser, then the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snap_bundle::{kmsg, mountinfo, sos};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(bytes);
    match which % 10 {
        0 => drop(sos::lsof::parse_listing(&text)),
        1 => drop(sos::netstat::parse_netstat_listing(&text)),
        2 => drop(sos::netstat::parse_ss_listing(&text)),
        3 => drop(sos::df::parse(Some(&text), None)),
        4 => drop(sos::df::parse(None, Some(&text))),
        5 => drop(sos::ps::parse(&[("sos_commands/process/ps_auxwww", &text)])),
        6 => drop(sos::uptime::parse_uptime(&text)),
        7 => drop(sos::uptime::parse_free(&text)),
        8 => drop(kmsg::parse(bytes)),
        _ => drop(mountinfo::parse_mountinfo(&text)),
    }
});
