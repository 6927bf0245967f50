//! Kernel messages in AFTER that were not in BEFORE. On one boot, records are matched
//! by `/dev/kmsg` sequence number (a message repeated word for word is still new);
//! otherwise by their text, without times.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::Input;

#[derive(Debug, Clone, Default, Serialize)]
pub struct NewMessages {
    /// `sequence`, `text`, or empty when the log was not compared.
    pub matched_by: &'static str,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Seconds since boot, when the record had them.
    pub uptime_s: Option<f64>,
    pub text: String,
}

const KMSG: &str = "kernel/kmsg.txt";

/// One bundle's kernel log, read once: `/dev/kmsg` records when it has them, and the
/// messages of whatever log it has.
pub struct Facts {
    records: Vec<snap_bundle::kmsg::Record>,
    messages: Option<Vec<Message>>,
}

impl Facts {
    pub fn read(i: &Input) -> Facts {
        let records = i.raw(KMSG).map(|raw| snap_bundle::kmsg::parse_kmsg(&raw)).unwrap_or_default();
        let messages = crate::klog::read(i)
            .ok()
            .map(|lines| lines.iter().map(|l| Message { uptime_s: l.uptime_s, text: l.message.clone() }).collect());
        Facts { records, messages }
    }
}

pub fn compare(b: &Facts, a: &Facts, same_boot: bool, skipped: &mut BTreeMap<String, String>) -> NewMessages {
    if same_boot {
        if let Some(last) = b.records.iter().filter_map(|r| r.seq).max() {
            if a.records.iter().any(|r| r.seq.is_some()) {
                let messages = a
                    .records
                    .iter()
                    .filter(|r| r.seq.is_some_and(|s| s > last))
                    .map(|r| Message { uptime_s: Some(r.ts_usec as f64 / 1e6), text: r.message.clone() })
                    .collect();
                return NewMessages { matched_by: "sequence", messages };
            }
        }
    }
    match (&b.messages, &a.messages) {
        (Some(mb), Some(ma)) => {
            let known: HashSet<&str> = mb.iter().map(|m| m.text.as_str()).collect();
            let messages = ma.iter().filter(|m| !known.contains(m.text.as_str())).cloned().collect();
            NewMessages { matched_by: "text", messages }
        }
        _ => {
            skipped.insert("kernel_log".into(), "a bundle has no kernel log".into());
            NewMessages::default()
        }
    }
}
