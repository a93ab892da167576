//! The error-code catalogue the generator writes to `error_codes.csv`: every code the traffic can
//! carry, with its meaning (label, category, severity) and whether it is a failure, a drop and
//! customer impacting.

use serde::Serialize;

/// One row of `error_codes.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorCode {
    pub code: &'static str,
    /// `syslog` or `radius`.
    pub source_type: &'static str,
    pub label: &'static str,
    /// `network`, `customer`, `equipment`, `service` or `normal`.
    pub category: &'static str,
    /// `critical`, `major`, `minor`, `warning` or `info`.
    pub severity: &'static str,
    pub is_failure: bool,
    pub is_drop: bool,
    pub customer_impacting: bool,
}

#[allow(clippy::too_many_arguments)]
const fn code(
    code: &'static str,
    source_type: &'static str,
    label: &'static str,
    category: &'static str,
    severity: &'static str,
    is_failure: bool,
    is_drop: bool,
    customer_impacting: bool,
) -> ErrorCode {
    ErrorCode { code, source_type, label, category, severity, is_failure, is_drop, customer_impacting }
}

/// The whole catalogue, syslog codes first, then RADIUS terminate causes 1 to 18 (RFC 2866).
pub const CATALOGUE: &[ErrorCode] = &[
    code("DHCP-NOOFFER", "syslog", "No DHCP offer received", "network", "major", true, false, true),
    code("PPP-LCPTIMEOUT", "syslog", "PPP LCP echo timeout", "network", "major", true, true, true),
    code("PPP-AUTHFAIL", "syslog", "PPP authentication failed", "customer", "minor", true, false, true),
    code("LINK-DOWN", "syslog", "Link down", "network", "major", true, true, true),
    code("LINK-UP", "syslog", "Link up", "normal", "info", false, false, false),
    code("DSL-RETRAIN", "syslog", "DSL line retrained", "network", "warning", false, false, false),
    code("SYS-RESTART", "syslog", "Equipment restarted", "equipment", "warning", false, false, false),
    code("GPON-LOS", "syslog", "GPON loss of signal", "network", "critical", true, true, true),
    code("GPON-DYINGGASP", "syslog", "ONT dying gasp (power lost)", "customer", "minor", true, true, true),
    code("RADIUS-TC-1", "radius", "User-Request", "normal", "info", false, false, false),
    code("RADIUS-TC-2", "radius", "Lost-Carrier", "network", "major", true, true, true),
    code("RADIUS-TC-3", "radius", "Lost-Service", "service", "major", true, true, true),
    code("RADIUS-TC-4", "radius", "Idle-Timeout", "normal", "info", false, false, false),
    code("RADIUS-TC-5", "radius", "Session-Timeout", "normal", "info", false, false, false),
    code("RADIUS-TC-6", "radius", "Admin-Reset", "service", "warning", false, true, true),
    code("RADIUS-TC-7", "radius", "Admin-Reboot", "service", "warning", false, true, true),
    code("RADIUS-TC-8", "radius", "Port-Error", "equipment", "major", true, true, true),
    code("RADIUS-TC-9", "radius", "NAS-Error", "equipment", "major", true, true, true),
    code("RADIUS-TC-10", "radius", "NAS-Request", "service", "info", false, false, false),
    code("RADIUS-TC-11", "radius", "NAS-Reboot", "equipment", "major", true, true, true),
    code("RADIUS-TC-12", "radius", "Port-Unneeded", "normal", "info", false, false, false),
    code("RADIUS-TC-13", "radius", "Port-Preempted", "service", "minor", false, true, true),
    code("RADIUS-TC-14", "radius", "Port-Suspended", "service", "minor", false, true, true),
    code("RADIUS-TC-15", "radius", "Service-Unavailable", "service", "major", true, true, true),
    code("RADIUS-TC-16", "radius", "Callback", "normal", "info", false, false, false),
    code("RADIUS-TC-17", "radius", "User-Error", "customer", "minor", false, false, true),
    code("RADIUS-TC-18", "radius", "Host-Request", "normal", "info", false, false, false),
];

/// The catalogue entry of `code`, if any.
pub fn lookup(code: &str) -> Option<&'static ErrorCode> {
    CATALOGUE.iter().find(|c| c.code == code)
}

/// Whether `code` is a failure according to the catalogue (`false` for unknown codes).
pub fn is_failure(code: &str) -> bool {
    lookup(code).is_some_and(|c| c.is_failure)
}

/// The catalogue code of RADIUS Acct-Terminate-Cause `cause` (1 to 18).
pub fn radius_code(cause: u32) -> Option<&'static str> {
    let wanted = format!("RADIUS-TC-{cause}");
    CATALOGUE.iter().find(|c| c.code == wanted).map(|c| c.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn contract_codes_have_the_contract_failure_flags() {
        for (code, failure) in [
            ("DHCP-NOOFFER", true),
            ("PPP-LCPTIMEOUT", true),
            ("PPP-AUTHFAIL", true),
            ("LINK-DOWN", true),
            ("LINK-UP", false),
            ("DSL-RETRAIN", false),
            ("SYS-RESTART", false),
            ("GPON-LOS", true),
            ("GPON-DYINGGASP", true),
            ("RADIUS-TC-1", false),
            ("RADIUS-TC-4", false),
            ("RADIUS-TC-5", false),
            ("RADIUS-TC-6", false),
            ("RADIUS-TC-2", true),
            ("RADIUS-TC-3", true),
            ("RADIUS-TC-8", true),
            ("RADIUS-TC-9", true),
            ("RADIUS-TC-11", true),
            ("RADIUS-TC-15", true),
        ] {
            assert_eq!(lookup(code).map(|c| c.is_failure), Some(failure), "{code}");
        }
    }

    #[test]
    fn codes_are_unique_and_fields_in_their_vocabularies() {
        let codes: HashSet<_> = CATALOGUE.iter().map(|c| c.code).collect();
        assert_eq!(codes.len(), CATALOGUE.len());
        for c in CATALOGUE {
            assert!(["syslog", "radius"].contains(&c.source_type), "{}", c.code);
            assert!(["network", "customer", "equipment", "service", "normal"].contains(&c.category), "{}", c.code);
            assert!(["critical", "major", "minor", "warning", "info"].contains(&c.severity), "{}", c.code);
            assert!(!c.is_failure || c.customer_impacting, "{}", c.code);
        }
        assert_eq!((1..=18).filter(|n| radius_code(*n).is_some()).count(), 18);
        assert_eq!(radius_code(19), None);
    }
}
