//! The rules, one module each, and the one list of them.

pub mod load_high;
pub mod mem_available;
pub mod proc_zombies;

use crate::Rule;

/// Every rule, in the order `snap rules` lists them.
pub fn registry() -> Vec<&'static dyn Rule> {
    vec![&load_high::LoadHigh, &mem_available::MemAvailableLow, &proc_zombies::Zombies]
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

    /// A directory bundle holding exactly these entries. The directory is kept alive
    /// for the test process by leaking it (tests are short-lived).
    pub fn bundle_with(entries: &[(&str, &str)]) -> Bundle {
        let dir = tempfile::tempdir().unwrap().keep();
        for (name, text) in entries {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Bundle::open(&dir).unwrap()
    }
}
