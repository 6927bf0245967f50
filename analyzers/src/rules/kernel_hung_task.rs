//! `kernel.hung_task`: tasks the kernel's hung-task detector reported as stuck in
//! uninterruptible sleep (D) for longer than `kernel.hung_task_timeout_secs`.
//!
//! `INFO: task NAME:PID blocked for more than N seconds.` (all kernels since 2.6.x), then
//! the task line and its call trace, whose first frames name what it waits for.

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct HungTask;

/// Stack frames kept per task as evidence.
const FRAMES: usize = 8;

impl Rule for HungTask {
    fn id(&self) -> &'static str {
        "kernel.hung_task"
    }

    fn detects(&self) -> &'static str {
        "tasks blocked in uninterruptible sleep for longer than the hung-task timeout"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any report fires, as a warning, one finding per task (pid and command) with its count \
         and the longest wait. The kernel only logs a task after hung_task_timeout_secs (120 s by \
         default) in D state: it is waiting for I/O or a lock that does not come (a dead disk or \
         NFS server, a storage path failover, a kernel deadlock). The call trace says which.",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        for (i, line) in lines.iter().enumerate() {
            let Some((comm, pid, secs)) = parse(&line.message) else { continue };
            let g = groups.add(&format!("pid {pid} ({comm})"), line);
            let longest = g.details.get("blocked_s").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            g.details.insert("blocked_s".into(), longest.max(secs).to_string());
            g.details.entry("pid".into()).or_insert_with(|| pid.to_string());
            g.details.entry("command".into()).or_insert_with(|| comm.to_string());
            if g.count == 1 {
                // The first frames of its stack (lines like ` io_schedule+0x16/0x40`).
                let frames: Vec<_> = lines[i + 1..]
                    .iter()
                    .take(60)
                    .take_while(|l| parse(&l.message).is_none())
                    .filter(|l| l.message.contains("+0x"))
                    .take(FRAMES)
                    .collect();
                for f in &frames {
                    g.push(f);
                }
                let names: Vec<String> = frames
                    .iter()
                    .filter_map(|f| f.message.split_whitespace().find(|w| w.contains("+0x")).map(String::from))
                    .map(|w| w.trim_start_matches('?').split('+').next().unwrap_or("").to_string())
                    .collect();
                g.details.insert("stack".into(), names.join(" < "));
            }
        }
        let mut out = Vec::new();
        for (subject, g) in groups.into_groups() {
            let secs = &g.details["blocked_s"];
            let mut summary = format!("{subject} blocked in D state for more than {secs} s");
            if g.count > 1 {
                summary.push_str(&format!(", reported {} times", g.count));
            }
            let stack = g.details.get("stack").cloned().unwrap_or_default();
            let mut f = g
                .finding(self.id(), Severity::Warning, &subject, summary)
                .fact("pid", g.details["pid"].parse::<u64>().unwrap_or(0))
                .fact("command", g.details["command"].clone())
                .fact("blocked_s", secs.parse::<u64>().unwrap_or(0))
                .advice(
                    "The task waited that long for I/O or a lock. Read its call trace: block-layer or \
                     filesystem frames (io_schedule, wait_on_page_bit, jbd2, xfs_log) point at slow or \
                     failing storage (see kernel.io_error, the disk's latency), nfs/rpc frames at an \
                     unreachable NFS server, mutex/rwsem frames at a kernel lock held elsewhere.",
                );
            if !stack.is_empty() {
                f = f.fact("stack", stack);
            }
            out.push(f);
        }
        Ok(klog::aged_all(input, out))
    }
}

/// `INFO: task df:1177107 blocked for more than 120 seconds.` to (comm, pid, seconds).
fn parse(m: &str) -> Option<(&str, u32, u64)> {
    let rest = m.split_once("INFO: task ")?.1;
    let (task, rest) = rest.split_once(" blocked for more than ")?;
    let (comm, pid) = task.rsplit_once(':')?;
    let secs = rest.split_whitespace().next()?.parse().ok()?;
    Some((comm, pid.parse().ok()?, secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn hung_tasks_with_stack() {
        // From hotsos' kernlog_calltrace_hungtasks scenario (5.15), abridged.
        let b = bundle_with(&[(
            "var/log/kern.log",
            "Feb 04 00:07:13 h kernel: INFO: task df:1177107 blocked for more than 120 seconds.\n\
             Feb 04 00:07:13 h kernel:       Tainted: P           O      5.15.0-53-generic #59~20.04.1-Ubuntu\n\
             Feb 04 00:07:13 h kernel: Call Trace:\n\
             Feb 04 00:07:13 h kernel:  <TASK>\n\
             Feb 04 00:07:13 h kernel:  __schedule+0x2cd/0x890\n\
             Feb 04 00:07:13 h kernel:  rpc_wait_bit_killable+0x25/0xb0 [sunrpc]\n\
             Feb 04 00:09:14 h kernel: INFO: task df:1177107 blocked for more than 241 seconds.\n",
        )]);
        let f = HungTask.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "pid 1177107 (df)");
        assert_eq!(f[0].facts["count"], 2);
        assert_eq!(f[0].facts["blocked_s"], 241);
        assert_eq!(f[0].facts["stack"], "__schedule < rpc_wait_bit_killable");
        assert_eq!(f[0].facts["first_time"], "Feb 04 00:07:13");
        assert_eq!(f[0].facts["last_time"], "Feb 04 00:09:14");
    }

    #[test]
    fn quiet_otherwise() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[ 1.0] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.\n",
        )]);
        assert!(HungTask.evaluate(&Input::new(&b)).unwrap().is_empty());
        assert_eq!(
            parse("INFO: task kworker/u8:2:123 blocked for more than 122 seconds."),
            Some(("kworker/u8:2", 123, 122))
        );
    }
}
