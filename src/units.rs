//! Human-readable quantities for tables and pages: bytes in binary units, rates in bits/s.

/// `1536` → `1.5 KiB`; exact below 1 KiB.
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if v < 1024 {
        return format!("{v} B");
    }
    let mut x = v as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if x < 1024.0 {
            break;
        }
        x /= 1024.0;
        unit = u;
    }
    format!("{x:.1} {unit}")
}

/// `1_500_000.0` → `1.50 Mbit/s`.
pub fn bits_per_second(v: f64) -> String {
    const UNITS: [&str; 5] = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
    let mut x = v;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if x.abs() < 1000.0 {
            break;
        }
        x /= 1000.0;
        unit = u;
    }
    if unit == UNITS[0] {
        format!("{x:.0} {unit}")
    } else {
        format!("{x:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(super::bits_per_second(999.0), "999 bit/s");
        assert_eq!(super::bits_per_second(1_500_000.0), "1.50 Mbit/s");
    }
}
