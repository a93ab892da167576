//! The demo sources of the formats the generator does not produce (JSON, key=value and a
//! declarative binary layout), shared by the benchmarks and the fuzz targets: their
//! `[transform.decode]` configuration and realistic records, deterministic from an index.
#![allow(dead_code)]

use lux_decode::DecodeConfig;

/// Source id of the JSON CPE telemetry source.
pub const JSON_SOURCE: &str = "cpe-json";
/// Source id of the key=value DSLAM source.
pub const KV_SOURCE: &str = "dslam-kv";
/// Source id of the binary OLT alarm source.
pub const BINARY_SOURCE: &str = "olt-binary";

/// The `[transform.decode]` section of the demo sources, as an operator would write it (here in
/// its JSON form): a binary OLT alarm layout (magic, length, fixed fields, TLV section) and the
/// mappings of the three sources to the canonical event.
pub const CONFIG_JSON: &str = r#"{
  "layouts": [{
    "name": "olt-alarm",
    "magic": "A5 5A",
    "byte_order": "big",
    "length_field": "length",
    "fields": [
      { "name": "length", "offset": 2, "type": "u16" },
      { "name": "time", "offset": 4, "type": "unix_s" },
      { "name": "alarm", "offset": 8, "type": "u16" },
      { "name": "severity", "offset": 10, "type": "u8" },
      { "name": "slot", "offset": 11, "type": "u8" },
      { "name": "olt", "offset": 12, "type": "string", "length": 16 }
    ],
    "tlv": {
      "offset": 28, "tag_size": 1, "length_size": 1,
      "tags": [
        { "tag": 1, "name": "onu_serial", "type": "string" },
        { "tag": 2, "name": "subscriber", "type": "string" },
        { "tag": 3, "name": "rx_power_centi_dbm", "type": "i16" }
      ]
    }
  }],
  "sources": [
    {
      "source": "olt-binary", "format": "binary", "layout": "olt-alarm",
      "equipment": { "field": "olt", "key": "hostname" },
      "time": { "field": "time", "format": "unix_s" },
      "kind": { "field": "alarm", "map": { "5": "link_down", "6": "link_up", "17": "optical_los", "18": "power_loss" } },
      "outcome": { "field": "severity", "map": { "0": "info", "1": "failure", "2": "failure" } },
      "error_code": { "field": "alarm", "prefix": "OLTBIN-" },
      "subscriber": { "field": "subscriber" }
    },
    {
      "source": "cpe-json", "format": "json",
      "equipment": { "field": "device.hostname", "key": "hostname" },
      "time": { "field": "ts", "format": "rfc3339" },
      "kind": { "field": "event" },
      "outcome": { "field": "status", "map": { "ok": "success", "error": "failure" } },
      "error_code": { "field": "code" },
      "subscriber": { "field": "subscriber" },
      "message": { "field": "msg" }
    },
    {
      "source": "dslam-kv", "format": "kv",
      "equipment": { "field": "host", "key": "hostname" },
      "time": { "field": "ts", "format": "unix_ms" },
      "kind": { "field": "evt" },
      "outcome": { "field": "result", "map": { "ok": "success", "fail": "failure" } },
      "error_code": { "field": "code" },
      "subscriber": { "field": "sub" },
      "message": { "field": "msg" }
    }
  ]
}"#;

/// The demo sources' configuration, or what is wrong with it.
pub fn config() -> Result<DecodeConfig, String> {
    let cfg: DecodeConfig = serde_json::from_str(CONFIG_JSON).map_err(|e| format!("demo decode config: {e}"))?;
    let problems = cfg.validate("transform.decode");
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("; "))
    }
}

/// `2026-01-05T10:00:00Z`.
pub const T0: u64 = 1_767_607_200;

fn pick<'a>(options: &[&'a str], i: u64) -> &'a str {
    let n = options.len() as u64;
    options.get(usize::try_from(i % n.max(1)).unwrap_or(0)).copied().unwrap_or("")
}

/// The `i`-th JSON record of a CPE: a DHCP failure, a PPP failure or a link up.
pub fn json_record(i: u64) -> Vec<u8> {
    let (event, status, code) = match i % 4 {
        0 => ("dhcp_failure", "error", "DHCP-NOOFFER"),
        1 => ("ppp_failure", "error", "PPP-LCPTIMEOUT"),
        _ => ("link_up", "ok", "LINK-UP"),
    };
    let ms = (T0 + i / 10) * 1000 + i % 1000;
    let ts = lux_model::format_rfc3339_millis(i64::try_from(ms).unwrap_or(0));
    format!(
        r#"{{"ts":"{ts}","device":{{"hostname":"cpe-par{:03}-{:05}","model":"{}","fw":"V5R20C10"}},"event":"{event}","status":"{status}","code":"{code}","subscriber":"sub{:07}","msg":"{event} on wan0 after {} retries","wan":{{"ifname":"wan0","vlan":{},"retries":{}}}}}"#,
        i % 7 + 1,
        i % 5000,
        pick(&["HG8245H", "F680", "Livebox-6"], i),
        i % 250_000,
        i % 5,
        100 + i % 3,
        i % 5,
    )
    .into_bytes()
}

/// The `i`-th key=value record of a DSLAM: retrains, link downs and link ups.
pub fn kv_record(i: u64) -> Vec<u8> {
    let (evt, result, code) = match i % 3 {
        0 => ("link_retrain", "ok", "DSL-RETRAIN"),
        1 => ("link_down", "fail", "LINK-DOWN"),
        _ => ("link_up", "ok", "LINK-UP"),
    };
    format!(
        r#"ts={} host=dslam-par{:03}-{:02} evt={evt} result={result} code={code} sub=sub{:07} port=1/{}/{} snr_margin_db={}.{} msg="{} on port 1/{}/{}""#,
        (T0 + i / 10) * 1000 + i % 1000,
        i % 7 + 1,
        i % 12,
        i % 250_000,
        i % 4 + 1,
        i % 48,
        i % 12,
        i % 10,
        evt.replace('_', " "),
        i % 4 + 1,
        i % 48,
    )
    .into_bytes()
}

/// One OLT alarm record of the `olt-alarm` layout.
pub fn binary_record(time: u32, alarm: u16, severity: u8, slot: u8, olt: &str, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut r = vec![0xA5, 0x5A, 0, 0];
    r.extend_from_slice(&time.to_be_bytes());
    r.extend_from_slice(&alarm.to_be_bytes());
    r.push(severity);
    r.push(slot);
    let mut name = [0u8; 16];
    for (dst, src) in name.iter_mut().zip(olt.bytes()) {
        *dst = src;
    }
    r.extend_from_slice(&name);
    for (tag, value) in tlvs {
        r.push(*tag);
        r.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
        r.extend_from_slice(value);
    }
    let len = u16::try_from(r.len()).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = r.get_mut(2..4) {
        field.copy_from_slice(&len);
    }
    r
}

/// The `i`-th binary OLT alarm: optical LOS, dying gasp, link down or up of an ONU.
pub fn binary_alarm(i: u64) -> Vec<u8> {
    let (alarm, severity) = match i % 4 {
        0 => (17, 2),
        1 => (18, 1),
        2 => (5, 1),
        _ => (6, 0),
    };
    let serial = format!("HWTC{:08X}", i % 100_000);
    let subscriber = format!("sub{:07}", i % 250_000);
    let rx_power = (-1800 - i64::try_from(i % 900).unwrap_or(0)) as i16;
    binary_record(
        u32::try_from(T0 + i / 10).unwrap_or(u32::MAX),
        alarm,
        severity,
        u8::try_from(i % 16).unwrap_or(0),
        &format!("olt-par{:03}-{:02}", i % 7 + 1, i % 4),
        &[(1, serial.as_bytes()), (2, subscriber.as_bytes()), (3, &rx_power.to_be_bytes())],
    )
}
