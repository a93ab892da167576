//! The RADIUS dictionary: every standard attribute of RFC 2865, 2866 and 2869 (name, type, the
//! named values of the enumerated integers, whether it may repeat), and the vendor dictionaries
//! that decode Vendor-Specific attributes: a built-in set (Cisco, Juniper, Huawei) extended by
//! `[[transform.decode.radius.vendors]]`, compiled into hash maps once, at `Decoder::new`.

use crate::config::{RadiusConfig, RadiusType};
use lux_model::SmallStr;
use std::collections::HashMap;

/// A standard attribute's definition.
#[derive(Debug, Clone, Copy)]
pub struct StdAttr {
    pub name: &'static str,
    pub kind: RadiusType,
    /// Whether RFC 2865/2866/2869 allow it more than once in an Accounting-Request (the values
    /// then form an array); a repeated single-valued attribute is refused as `bad_value`.
    pub multi: bool,
}

const fn a(name: &'static str, kind: RadiusType) -> Option<StdAttr> {
    Some(StdAttr { name, kind, multi: false })
}

const fn m(name: &'static str, kind: RadiusType) -> Option<StdAttr> {
    Some(StdAttr { name, kind, multi: true })
}

/// The standard attribute of type `t` (RFC 2865, 2866, 2869), if any.
#[inline]
pub fn standard(t: u8) -> Option<StdAttr> {
    STANDARD.get(usize::from(t)).copied().flatten()
}

/// [`standard`] of every type, computed at compile time.
static STANDARD: [Option<StdAttr>; 256] = {
    let mut table = [None; 256];
    let mut t = 0;
    while t < 256 {
        table[t] = standard_by_type(t as u8);
        t += 1;
    }
    table
};

const fn standard_by_type(t: u8) -> Option<StdAttr> {
    use RadiusType::{Date, Integer as I, IpAddr as Ip, Octets as O, Text as T};
    match t {
        1 => a("User-Name", T),
        2 => a("User-Password", O),
        3 => a("CHAP-Password", O),
        4 => a("NAS-IP-Address", Ip),
        5 => a("NAS-Port", I),
        6 => a("Service-Type", I),
        7 => a("Framed-Protocol", I),
        8 => a("Framed-IP-Address", Ip),
        9 => a("Framed-IP-Netmask", Ip),
        10 => a("Framed-Routing", I),
        11 => m("Filter-Id", T),
        12 => a("Framed-MTU", I),
        13 => m("Framed-Compression", I),
        14 => m("Login-IP-Host", Ip),
        15 => a("Login-Service", I),
        16 => a("Login-TCP-Port", I),
        18 => m("Reply-Message", T),
        19 => a("Callback-Number", T),
        20 => a("Callback-Id", T),
        22 => m("Framed-Route", T),
        23 => a("Framed-IPX-Network", I),
        24 => a("State", O),
        25 => m("Class", O),
        26 => m("Vendor-Specific", O),
        27 => a("Session-Timeout", I),
        28 => a("Idle-Timeout", I),
        29 => a("Termination-Action", I),
        30 => a("Called-Station-Id", T),
        31 => a("Calling-Station-Id", T),
        32 => a("NAS-Identifier", T),
        33 => m("Proxy-State", O),
        34 => a("Login-LAT-Service", T),
        35 => a("Login-LAT-Node", T),
        36 => a("Login-LAT-Group", O),
        37 => a("Framed-AppleTalk-Link", I),
        38 => m("Framed-AppleTalk-Network", I),
        39 => a("Framed-AppleTalk-Zone", T),
        40 => a("Acct-Status-Type", I),
        41 => a("Acct-Delay-Time", I),
        42 => a("Acct-Input-Octets", I),
        43 => a("Acct-Output-Octets", I),
        44 => a("Acct-Session-Id", T),
        45 => a("Acct-Authentic", I),
        46 => a("Acct-Session-Time", I),
        47 => a("Acct-Input-Packets", I),
        48 => a("Acct-Output-Packets", I),
        49 => a("Acct-Terminate-Cause", I),
        50 => a("Acct-Multi-Session-Id", T),
        51 => a("Acct-Link-Count", I),
        52 => a("Acct-Input-Gigawords", I),
        53 => a("Acct-Output-Gigawords", I),
        55 => a("Event-Timestamp", Date),
        60 => a("CHAP-Challenge", O),
        61 => a("NAS-Port-Type", I),
        62 => a("Port-Limit", I),
        63 => a("Login-LAT-Port", T),
        70 => a("ARAP-Password", O),
        71 => a("ARAP-Features", O),
        72 => a("ARAP-Zone-Access", I),
        73 => a("ARAP-Security", I),
        74 => m("ARAP-Security-Data", O),
        75 => a("Password-Retry", I),
        76 => a("Prompt", I),
        77 => a("Connect-Info", T),
        78 => a("Configuration-Token", O),
        79 => m("EAP-Message", O),
        80 => a("Message-Authenticator", O),
        84 => a("ARAP-Challenge-Response", O),
        85 => a("Acct-Interim-Interval", I),
        87 => a("NAS-Port-Id", T),
        88 => a("Framed-Pool", T),
        _ => None,
    }
}

/// The name of the attribute that names the values of the enumerated integer attribute `t`
/// (its name and `-Name`: `Acct-Terminate-Cause-Name`), `'static` for the attributes
/// [`value_name`] knows.
pub(crate) fn value_label(t: u8) -> Option<&'static str> {
    Some(match t {
        40 => "Acct-Status-Type-Name",
        49 => "Acct-Terminate-Cause-Name",
        6 => "Service-Type-Name",
        7 => "Framed-Protocol-Name",
        61 => "NAS-Port-Type-Name",
        45 => "Acct-Authentic-Name",
        _ => return None,
    })
}

/// The name of value `v` of the enumerated integer attribute `t` (Acct-Status-Type,
/// Acct-Terminate-Cause, Service-Type, Framed-Protocol, NAS-Port-Type, Acct-Authentic).
pub fn value_name(t: u8, v: u32) -> Option<&'static str> {
    let names: &[&str] = match t {
        // Acct-Status-Type (RFC 2866 5.1, RFC 2867 4.1, RFC 2866 errata 15 Failed)
        40 => &[
            "",
            "Start",
            "Stop",
            "Interim-Update",
            "",
            "",
            "",
            "Accounting-On",
            "Accounting-Off",
            "Tunnel-Start",
            "Tunnel-Stop",
            "Tunnel-Reject",
            "Tunnel-Link-Start",
            "Tunnel-Link-Stop",
            "Tunnel-Link-Reject",
            "Failed",
        ],
        // Acct-Terminate-Cause (RFC 2866 5.10)
        49 => &[
            "",
            "User-Request",
            "Lost-Carrier",
            "Lost-Service",
            "Idle-Timeout",
            "Session-Timeout",
            "Admin-Reset",
            "Admin-Reboot",
            "Port-Error",
            "NAS-Error",
            "NAS-Request",
            "NAS-Reboot",
            "Port-Unneeded",
            "Port-Preempted",
            "Port-Suspended",
            "Service-Unavailable",
            "Callback",
            "User-Error",
            "Host-Request",
        ],
        // Service-Type (RFC 2865 5.6)
        6 => &[
            "",
            "Login",
            "Framed",
            "Callback-Login",
            "Callback-Framed",
            "Outbound",
            "Administrative",
            "NAS-Prompt",
            "Authenticate-Only",
            "Callback-NAS-Prompt",
            "Call-Check",
            "Callback-Administrative",
        ],
        // Framed-Protocol (RFC 2865 5.7)
        7 => &["", "PPP", "SLIP", "ARAP", "Gandalf-SLML", "Xylogics-IPX-SLIP", "X.75-Synchronous"],
        // NAS-Port-Type (RFC 2865 5.41)
        61 => &[
            "Async",
            "Sync",
            "ISDN",
            "ISDN-V120",
            "ISDN-V110",
            "Virtual",
            "PIAFS",
            "HDLC-Clear-Channel",
            "X.25",
            "X.75",
            "G.3-Fax",
            "SDSL",
            "ADSL-CAP",
            "ADSL-DMT",
            "IDSL",
            "Ethernet",
            "xDSL",
            "Cable",
            "Wireless-Other",
            "Wireless-802.11",
        ],
        // Acct-Authentic (RFC 2866 5.6)
        45 => &["", "RADIUS", "Local", "Remote"],
        _ => return None,
    };
    usize::try_from(v).ok().and_then(|i| names.get(i)).copied().filter(|n| !n.is_empty())
}

/// A vendor sub-attribute's definition.
#[derive(Debug, Clone)]
pub struct VendorAttr {
    pub name: SmallStr,
    pub kind: RadiusType,
}

/// One vendor's dictionary.
#[derive(Debug, Clone, Default)]
pub struct Vendor {
    pub name: String,
    pub attrs: HashMap<u8, VendorAttr>,
}

/// Every vendor dictionary, by IANA enterprise number.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    pub vendors: HashMap<u32, Vendor>,
}

/// A built-in vendor: (vendor id, vendor name, [(code, name, type)]).
pub type BuiltInVendor = (u32, &'static str, &'static [(u8, &'static str, RadiusType)]);

/// The built-in vendor dictionaries.
pub const BUILT_IN_VENDORS: &[BuiltInVendor] = &[
    (
        9,
        "Cisco",
        &[
            (1, "Cisco-AVPair", RadiusType::Text),
            (2, "Cisco-NAS-Port", RadiusType::Text),
            (195, "Cisco-Disconnect-Cause", RadiusType::Integer),
        ],
    ),
    (
        2636,
        "Juniper",
        &[
            (1, "Juniper-Local-User-Name", RadiusType::Text),
            (2, "Juniper-Allow-Commands", RadiusType::Text),
            (3, "Juniper-Deny-Commands", RadiusType::Text),
            (4, "Juniper-Allow-Configuration", RadiusType::Text),
            (5, "Juniper-Deny-Configuration", RadiusType::Text),
        ],
    ),
    (
        2011,
        "Huawei",
        &[
            (1, "Huawei-Input-Burst-Size", RadiusType::Integer),
            (2, "Huawei-Input-Average-Rate", RadiusType::Integer),
            (3, "Huawei-Input-Peak-Rate", RadiusType::Integer),
            (4, "Huawei-Output-Burst-Size", RadiusType::Integer),
            (5, "Huawei-Output-Average-Rate", RadiusType::Integer),
            (6, "Huawei-Output-Peak-Rate", RadiusType::Integer),
            (138, "Huawei-Domain-Name", RadiusType::Text),
        ],
    ),
];

impl Dictionary {
    /// The built-in vendors extended by `cfg` (entries with invalid types or codes are skipped:
    /// [`RadiusConfig::validate`] reports them).
    pub fn new(cfg: &RadiusConfig) -> Dictionary {
        let mut vendors: HashMap<u32, Vendor> = HashMap::new();
        for (id, name, attrs) in BUILT_IN_VENDORS {
            let vendor = vendors.entry(*id).or_default();
            vendor.name = (*name).to_owned();
            for (code, attr, kind) in *attrs {
                vendor.attrs.insert(*code, VendorAttr { name: SmallStr::from_static(attr), kind: *kind });
            }
        }
        for v in &cfg.vendors {
            let vendor = vendors.entry(v.id).or_default();
            if !v.name.is_empty() {
                vendor.name = v.name.clone();
            }
            for attr in &v.attributes {
                if let (Ok(code), Some(kind)) = (u8::try_from(attr.code), RadiusType::parse(&attr.kind)) {
                    vendor.attrs.insert(code, VendorAttr { name: SmallStr::new(&attr.name), kind });
                }
            }
        }
        Dictionary { vendors }
    }
}

#[cfg(test)]
mod label_tests {
    #[test]
    fn value_labels_are_the_attribute_names_with_name() {
        for t in 0..=255u8 {
            let named = (0..64).any(|v| super::value_name(t, v).is_some_and(|n| !n.is_empty()));
            let expected = named.then(|| format!("{}-Name", super::standard(t).map_or("", |a| a.name)));
            assert_eq!(super::value_label(t).map(str::to_owned), expected, "attribute {t}");
        }
    }
}
