//! Small helpers the socket rules share: printing an endpoint, counting by key.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `10.0.0.1:80` or `[::1]:80`.
pub fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Counts of each key, most frequent first (then by key).
pub fn tally(keys: impl Iterator<Item = String>) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The first `top` counts as a JSON object (for a finding's facts).
pub fn to_object(counts: &[(String, usize)], top: usize) -> Value {
    Value::Object(counts.iter().take(top).map(|(k, n)| (k.clone(), Value::from(*n))).collect::<Map<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_tallies() {
        assert_eq!(endpoint("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(endpoint("::1", 80), "[::1]:80");
        let t = tally(["b", "a", "b"].iter().map(|s| s.to_string()));
        assert_eq!(t, vec![("b".to_string(), 2), ("a".to_string(), 1)]);
        assert_eq!(to_object(&t, 1), serde_json::json!({"b": 2}));
    }
}
