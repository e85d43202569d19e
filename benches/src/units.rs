//! Units as the anchors write them, and conversion between compatible ones.
//!
//! A unit is `<quantity>` or `<quantity>/<denominator>`: `us/process`, `ns/op`, `ms`,
//! `MB/s`, `GB/s`, `msgs/s`, `tasks/s`, `x`, `MB`. Time and byte prefixes scale; everything
//! else must match exactly.

/// Scale of a time or byte quantity relative to its base (seconds, bytes).
fn scale(q: &str) -> Option<(f64, &'static str)> {
    Some(match q {
        "ns" => (1e-9, "s"),
        "us" => (1e-6, "s"),
        "ms" => (1e-3, "s"),
        "s" => (1.0, "s"),
        "B" => (1.0, "B"),
        "kB" => (1e3, "B"),
        "MB" => (1e6, "B"),
        "GB" => (1e9, "B"),
        "KiB" => (1024.0, "B"),
        "MiB" => (1024.0 * 1024.0, "B"),
        "GiB" => (1024.0 * 1024.0 * 1024.0, "B"),
        _ => return None,
    })
}

/// `(factor, base unit)`: value × factor is the value in the base unit.
fn base(unit: &str) -> (f64, String) {
    let (q, den) = match unit.split_once('/') {
        Some((q, d)) => (q, Some(d)),
        None => (unit, None),
    };
    match scale(q) {
        Some((f, b)) => match den {
            Some(d) => (f, format!("{b}/{d}")),
            None => (f, b.to_owned()),
        },
        None => (1.0, unit.to_owned()),
    }
}

/// Converts `value` from unit `from` to unit `to`; `None` when they measure different things.
pub fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    let (ff, fb) = base(from);
    let (tf, tb) = base(to);
    (fb == tb).then(|| value * ff / tf)
}

/// True for time per operation and for memory sizes; false for rates and speedups.
pub fn lower_is_better(unit: &str) -> bool {
    let q = unit.split('/').next().unwrap_or(unit);
    matches!(scale(q), Some((_, "s"))) || is_memory(unit)
}

/// True for a plain memory size (`MB`).
pub fn is_memory(unit: &str) -> bool {
    !unit.contains('/') && matches!(scale(unit), Some((_, "B")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(convert(16.0, "GB/s", "MB/s"), Some(16000.0));
        assert_eq!(
            convert(195.0, "us/process", "ms/process").map(|v| (v * 1e6).round()),
            Some(195000.0)
        );
        assert_eq!(convert(1.0, "us/roundtrip", "us/process"), None);
        assert_eq!(convert(3.0, "msgs/s", "msgs/s"), Some(3.0));
        assert_eq!(convert(3.0, "x", "x"), Some(3.0));
        assert!(lower_is_better("ns/op"));
        assert!(lower_is_better("MB"));
        assert!(!lower_is_better("MB/s"));
        assert!(!lower_is_better("x"));
        assert!(!lower_is_better("tasks/s"));
    }
}
