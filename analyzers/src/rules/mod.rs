//! The rules, one module each, and the one list of them.

pub mod app_nginx;
pub mod cpu_imbalance;
pub mod cpu_iowait;
pub mod cpu_steal;
pub mod cpu_user;
pub mod disk_deleted;
pub mod disk_inodes;
pub mod disk_space;
pub mod fd_limit;
pub mod kernel_conntrack_full;
pub mod kernel_hardware_error;
pub mod kernel_hung_task;
pub mod kernel_io_error;
pub mod kernel_segfault;
pub mod kernel_soft_lockup;
pub mod kernel_syn_flood;
pub mod load_cpu_bound;
pub mod load_high;
pub mod load_io_bound;
pub mod mem_available;
pub mod mem_oom_candidates;
pub mod mem_oom_kill;
pub mod mem_swap;
pub mod net_close_wait;
pub mod net_counters;
pub mod net_listen_overflow;
pub mod net_retransmits;
pub mod net_syn_recv;
pub mod net_time_wait;
pub mod proc_pid_pressure;
pub mod proc_zombies;
pub mod socket_tally;
pub mod tcp_capture_gaps;
pub mod tcp_common;
pub mod tcp_connect_timeout;
pub mod tcp_idle_close;
pub mod tcp_read_timeout;
pub mod tcp_reset;
pub mod tcp_retransmission;
pub mod tcp_slow_response;
pub mod tcp_zero_window;

use crate::Rule;

/// Every rule, in the order `snap rules` lists them.
pub fn registry() -> Vec<&'static dyn Rule> {
    vec![
        &load_high::LoadHigh,
        &load_cpu_bound::CpuBound,
        &load_io_bound::IoBound,
        &cpu_user::CpuUser,
        &cpu_iowait::CpuIowait,
        &cpu_steal::CpuSteal,
        &cpu_imbalance::CpuImbalance,
        &mem_available::MemAvailableLow,
        &mem_oom_kill::OomKill,
        &mem_swap::Swap,
        &mem_oom_candidates::OomCandidates,
        &proc_zombies::Zombies,
        &proc_pid_pressure::PidPressure,
        &kernel_hung_task::HungTask,
        &kernel_soft_lockup::SoftLockup,
        &kernel_segfault::Segfault,
        &kernel_conntrack_full::ConntrackFull,
        &kernel_syn_flood::SynFlood,
        &kernel_io_error::IoError,
        &kernel_hardware_error::HardwareError,
        &net_close_wait::CloseWait,
        &net_time_wait::TimeWait,
        &net_syn_recv::SynRecv,
        &net_listen_overflow::ListenOverflow,
        &net_retransmits::Retransmits,
        &disk_space::SpaceLow,
        &disk_inodes::InodesLow,
        &disk_deleted::DeletedOpen,
        &fd_limit::FdLimitNear,
        &app_nginx::NginxWorkers,
        &tcp_read_timeout::ReadTimeout,
        &tcp_connect_timeout::ConnectTimeout,
        &tcp_retransmission::Retransmission,
        &tcp_reset::Reset,
        &tcp_idle_close::IdleClose,
        &tcp_zero_window::ZeroWindow,
        &tcp_slow_response::SlowResponse,
        &tcp_capture_gaps::CaptureGaps,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_dotted() {
        let mut ids: Vec<_> = super::registry().iter().map(|r| r.id()).collect();
        assert!(ids
            .iter()
            .all(|id| id.contains('.') && id.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')));
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(n, ids.len());
    }
}

/// Hand-made directory bundles for rule tests.
#[cfg(test)]
pub(crate) mod testing {
    use snap_bundle::Bundle;

    /// A directory bundle and the temporary directory holding it, removed on drop.
    pub struct TestBundle {
        bundle: Bundle,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TestBundle {
        type Target = Bundle;
        fn deref(&self) -> &Bundle {
            &self.bundle
        }
    }

    /// A directory bundle holding exactly these entries.
    pub fn bundle_with(entries: &[(&str, &str)]) -> TestBundle {
        let bytes: Vec<(&str, &[u8])> = entries.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
        bundle_with_bytes(&bytes)
    }

    /// The same with binary entries (a capture).
    pub fn bundle_with_bytes(entries: &[(&str, &[u8])]) -> TestBundle {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in entries {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        TestBundle { bundle: Bundle::open(dir.path()).unwrap(), _dir: dir }
    }
}
