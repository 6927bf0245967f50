//! The kernel's CPU list format (`0-3,8,10-11`, as in /sys/devices/system/cpu/online),
//! read by the collectors for the host facts and by the analyzers for bundles without
//! a manifest.

/// The number of CPUs in a list; None when it is malformed or empty.
pub fn count(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        n = n.checked_add(match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<u32>().ok()?.checked_sub(a.trim().parse::<u32>().ok()?)? + 1,
            None => {
                part.trim().parse::<u32>().ok()?;
                1
            }
        })?;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn cpu_lists() {
        assert_eq!(count("0-3\n"), Some(4));
        assert_eq!(count("0-3,8,10-11"), Some(7));
        assert_eq!(count("0"), Some(1));
        assert_eq!(count("x"), None);
        assert_eq!(count(""), None);
        assert_eq!(count("3-1"), None);
    }
}
