//! `kernel.hardware_error`: machine checks, EDAC memory errors and APEI/GHES hardware
//! error reports.
//!
//! `mce: [Hardware Error]: ...`, `[Hardware Error]: ...` (GHES, `{1}[Hardware Error]: ...`),
//! `Machine check events logged`, `EDAC MC0: 1 CE memory read error on ...` and `... UE ...`,
//! `EDAC sbridge MC0: HANDLING MCE MEMORY ERROR`. Boot messages of the same drivers
//! (`mce: CPU supports 9 MCE banks`, `EDAC MC0: Giving out device ...`) are not errors.

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct HardwareError;

impl Rule for HardwareError {
    fn id(&self) -> &'static str {
        "kernel.hardware_error"
    }

    fn detects(&self) -> &'static str {
        "machine-check exceptions, EDAC memory errors and firmware-reported hardware errors"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any report fires, one finding per source (EDAC memory controller, mce, GHES): warning \
         for corrected errors (CE; the hardware fixed them, but a rising count predicts a \
         failing DIMM or CPU), critical for uncorrected (UE) or fatal ones, which corrupt or \
         kill what touched the memory.",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        for line in lines.iter() {
            let Some((source, fatal)) = parse(&line.message) else { continue };
            let g = groups.add(&source, line);
            if fatal {
                g.details.insert("uncorrected".into(), "yes".into());
            }
        }
        Ok(klog::aged_all(
            input,
            groups
                .into_groups()
                .map(|(source, g)| {
                    let uncorrected = g.details.contains_key("uncorrected");
                    let severity = if uncorrected { Severity::Critical } else { Severity::Warning };
                    let what = if uncorrected { "uncorrected hardware errors" } else { "corrected hardware errors" };
                    let summary = format!("{} reports of {what} from {source}", g.count);
                    g.finding(self.id(), severity, &source, summary).fact("uncorrected", uncorrected).advice(
                        "Decode the reports (rasdaemon / ras-mc-ctl --errors, mcelog) to find the \
                     DIMM or CPU, check the BMC / IPMI event log, and have the part replaced if \
                     errors repeat; uncorrected errors warrant moving workloads off the host.",
                    )
                })
                .collect(),
        ))
    }
}

/// (source, uncorrected) of a hardware error line.
fn parse(m: &str) -> Option<(String, bool)> {
    let lower = m.to_ascii_lowercase();
    let fatal = lower.contains("uncorrect") || lower.contains("fatal") || has_word(m, "UE");
    if let Some(rest) = m.strip_prefix("EDAC ") {
        let memory_error = has_word(m, "CE") || has_word(m, "UE") || lower.contains("memory error");
        if !memory_error {
            return None;
        }
        // `EDAC MC0: ...` or `EDAC sbridge MC0: ...`: the controller.
        let mc = rest.split([' ', ':']).find(|w| w.starts_with("MC") && w.len() > 2).unwrap_or("EDAC");
        return Some((format!("EDAC {mc}"), fatal));
    }
    if m.contains("[Hardware Error]") {
        let source = if m.starts_with("mce") { "mce" } else { "GHES" };
        return Some((source.to_string(), fatal));
    }
    if m.contains("Machine check events logged") {
        return Some(("mce".to_string(), fatal));
    }
    None
}

fn has_word(m: &str, w: &str) -> bool {
    m.split(|c: char| !c.is_ascii_alphanumeric()).any(|x| x == w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn kinds() {
        assert_eq!(
            parse("EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x0)"),
            Some(("EDAC MC0".into(), false))
        );
        assert_eq!(parse("EDAC MC1: 1 UE memory read error on DIMM_A1"), Some(("EDAC MC1".into(), true)));
        assert_eq!(parse("mce: [Hardware Error]: Machine check events logged"), Some(("mce".into(), false)));
        assert_eq!(parse("{1}[Hardware Error]: event severity: fatal"), Some(("GHES".into(), true)));
        for quiet in [
            "mce: CPU supports 9 MCE banks",
            "EDAC MC0: Giving out device to module amd64_edac controller F19h_M10h: DEV 0000:00:18.3 (INTERRUPT)",
            "EDAC amd64: MC: 0: 16384MB 1: 16384MB",
            "EDAC MC: Ver: 3.0.0",
        ] {
            assert_eq!(parse(quiet), None, "{quiet}");
        }
    }

    #[test]
    fn grouped_by_source() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[ 1.0] EDAC MC0: 1 CE memory read error on DIMM_A1\n[ 2.0] EDAC MC0: 1 CE memory read error on DIMM_A1\n",
        )]);
        let f = HardwareError.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].subject.as_str(), f[0].severity), ("EDAC MC0", Severity::Warning));
        assert_eq!(f[0].facts["count"], 2);
    }
}
