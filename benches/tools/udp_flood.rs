//! Load generator for `benches/capture_vs_tcpdump.sh`: UDP datagrams to 127.0.0.1 at a
//! steady rate (or as fast as one thread can send), for a bounded time.
//!
//! ```text
//! udp_flood PORT RATE SECONDS PAYLOAD
//!   PORT     destination port on 127.0.0.1; the generator binds it itself, so no ICMP
//!            "port unreachable" answers the load (the datagrams are never read)
//!   RATE     datagrams per second, or `max`
//!   SECONDS  how long to send (fractions allowed, at most 600)
//!   PAYLOAD  UDP payload bytes per datagram (at most 1400)
//! ```
//!
//! Prints one line on stdout: `sent=N seconds=T pps=R failed=F`, where N counts the
//! datagrams the kernel accepted (a full send() return each) and F the sends refused.
//! Std only: it builds wherever the workspace builds.

use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Datagrams sent between two looks at the clock.
const BATCH: u64 = 64;

fn usage(msg: &str) -> ExitCode {
    eprintln!("udp_flood: {msg}\nusage: udp_flood PORT RATE|max SECONDS PAYLOAD");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, rate, seconds, payload] = &args[..] else {
        return usage("four arguments expected");
    };
    let Ok(port) = port.parse::<u16>() else { return usage("PORT is not a port number") };
    let rate = match rate.as_str() {
        "max" => None,
        r => match r.parse::<u64>() {
            Ok(r) if r > 0 => Some(r),
            _ => return usage("RATE is neither a positive number nor `max`"),
        },
    };
    let seconds = match seconds.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 600.0 => Duration::from_secs_f64(s),
        _ => return usage("SECONDS must lie in (0, 600]"),
    };
    let payload = match payload.parse::<usize>() {
        Ok(p) if p <= 1400 => p,
        _ => return usage("PAYLOAD must be at most 1400 bytes"),
    };

    // The sink: bound so that the kernel delivers (or drops at a full buffer) instead of
    // answering with ICMP; never read.
    let sink = match UdpSocket::bind(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return usage(&format!("cannot bind 127.0.0.1:{port}: {e}")),
    };
    let tx = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.connect(("127.0.0.1", port)).map(|()| s));
    let tx = match tx {
        Ok(s) => s,
        Err(e) => return usage(&format!("cannot open the sending socket: {e}")),
    };
    let buf = vec![0x5a_u8; payload];
    let (started, mut sent, mut failed) = (Instant::now(), 0u64, 0u64);
    loop {
        let elapsed = started.elapsed();
        if elapsed >= seconds {
            break;
        }
        let batch = match rate {
            None => BATCH,
            Some(r) => {
                let due = (elapsed.as_secs_f64() * r as f64) as u64;
                if due <= sent + failed {
                    // Ahead of schedule: sleep until the next datagram is due, at most 1 ms.
                    let next = (sent + failed + 1) as f64 / r as f64;
                    let wait = Duration::from_secs_f64((next - elapsed.as_secs_f64()).max(0.0));
                    std::thread::sleep(wait.min(Duration::from_millis(1)));
                    continue;
                }
                (due - sent - failed).min(BATCH)
            }
        };
        for _ in 0..batch {
            match tx.send(&buf) {
                Ok(n) if n == payload => sent += 1,
                _ => failed += 1,
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    drop(sink);
    println!("sent={sent} seconds={took:.3} pps={:.0} failed={failed}", sent as f64 / took);
    ExitCode::SUCCESS
}
