//! Input checks shared by resources: what AWS would reject, found before any call. Values that hold
//! reference tokens are not known yet and are skipped.

use ferroform_core::{is_unknown_str, FieldError};

/// Checks a name's length and characters.
pub fn name(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    describe: &str,
) {
    if is_unknown_str(value) {
        return;
    }
    let len = value.chars().count();
    if len < min || len > max {
        errors.push(FieldError::new(field, format!("`{value}` must be {min} to {max} characters long (it is {len})")));
    } else if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        errors.push(FieldError::new(field, format!("`{value}` holds `{bad}`; allowed: {describe}")));
    }
}

pub fn range(errors: &mut Vec<FieldError>, field: &str, value: i64, min: i64, max: i64) {
    if value < min || value > max {
        errors.push(FieldError::new(field, format!("{value} is out of range {min}..={max}")));
    }
}

/// An IPv4 CIDR block, returned parsed.
pub fn cidr(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<ipnet::Ipv4Net> {
    if is_unknown_str(value) {
        return None;
    }
    match value.parse::<ipnet::Ipv4Net>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            errors.push(FieldError::new(field, format!("`{value}` has host bits set; did you mean `{}`?", net.trunc())));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(field, format!("`{value}` is not an IPv4 CIDR block like 10.0.0.0/16")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rejects_garbage_and_host_bits() {
        let mut e = Vec::new();
        assert!(cidr(&mut e, "cidr", "10.0.0.0/16").is_some());
        assert!(cidr(&mut e, "cidr", "10.0.0.300/16").is_none());
        assert!(cidr(&mut e, "cidr", "10.0.0.1/16").is_none());
        assert!(cidr(&mut e, "cidr", "\u{e000}${ref:vpc.cidr}").is_none());
        assert_eq!(e.len(), 2);
    }
}
