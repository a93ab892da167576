//! The `[collect]` configuration section: one table per collector (`[[collect.syslog]]`,
//! `[[collect.radius]]` with its `[[collect.radius.clients]]`, `[[collect.files]]`,
//! `[[collect.http]]`), byte sizes written as `64KiB`, secrets (RADIUS shared secrets, HTTP
//! bearer tokens) that never appear in logs, and validation reporting every problem by dotted key.

use lux_model::{config_key, ConfigProblem, Format};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The collectors: network listeners that write what equipment sends into the `raw` topic.
/// None is configured by default (`lux run` then runs the demo generator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// Syslog listeners (`[[collect.syslog]]`), over UDP (RFC 5426), TCP (RFC 6587, octet
    /// counting or newline framing detected per connection) or TLS (RFC 5425).
    pub syslog: Vec<SyslogListenerConfig>,
    /// RADIUS accounting listeners (`[[collect.radius]]`, RFC 2866 over UDP).
    pub radius: Vec<RadiusListenerConfig>,
    /// Log files tailed line by line (`[[collect.files]]`), following rotation, with their read
    /// positions committed to the log together with the lines they cover.
    pub files: Vec<FileSourceConfig>,
    /// HTTP listeners (`[[collect.http]]`): `POST /v1/records` with newline-delimited records,
    /// behind a bearer token, answered once the records are committed.
    pub http: Vec<HttpListenerConfig>,
    /// Threads of the collectors' network runtime, shared by every listener (1 to 16).
    pub workers: usize,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig { syslog: Vec::new(), radius: Vec::new(), files: Vec::new(), http: Vec::new(), workers: 2 }
    }
}

/// The transport of a syslog listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyslogProtocol {
    /// One datagram, one record (RFC 5426).
    Udp,
    /// A stream of frames, octet-counted or newline-delimited (RFC 6587).
    Tcp,
    /// The TCP framing inside TLS (RFC 5425); needs `tls_cert` and `tls_key`.
    Tls,
}

impl SyslogProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogProtocol::Udp => "udp",
            SyslogProtocol::Tcp => "tcp",
            SyslogProtocol::Tls => "tls",
        }
    }
}

/// One syslog listener (`[[collect.syslog]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogListenerConfig {
    /// `udp`, `tcp` or `tls`.
    pub protocol: SyslogProtocol,
    /// The address and port to listen on (`0.0.0.0:514`, `[::]:6514`). Ports below 1024 need
    /// root or the CAP_NET_BIND_SERVICE capability.
    pub listen: String,
    /// The source id written into every record (`bras-syslog`): the transform stage picks the
    /// decoding of a record by it. Letters, digits, `.`, `_` and `-`; unique among listeners.
    pub source: String,
    /// The format hint written into every record (`syslog`, `json`, `kv`, `auto`, ...).
    pub format: Format,
    /// Longest frame kept whole (`64KiB`). A longer one is cut at this size and counted as
    /// `oversized`; the connection goes on.
    pub max_frame: ByteSize,
    /// TCP/TLS: most connections open at once; further ones are closed at once and counted as
    /// `connections_refused`. Each open connection may hold up to 64KiB + `max_frame` of
    /// memory while its sender bursts.
    pub max_connections: usize,
    /// TCP/TLS: a connection that sends nothing for this long is closed (counted as
    /// `idle_timeouts`; a frame it left half-sent is counted as `incomplete_frames`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// TLS: the server certificate chain, PEM (leaf first).
    pub tls_cert: Option<PathBuf>,
    /// TLS: the server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Most bytes of received records waiting for the log (`64MiB`). When it is full, TCP and
    /// TLS readers stop reading (the senders slow down) and UDP datagrams are dropped and
    /// counted as `dropped_overflow`.
    pub queue: ByteSize,
    /// UDP: the socket receive buffer asked of the kernel (SO_RCVBUF, `8MiB`), to absorb
    /// bursts; the kernel caps it at `net.core.rmem_max`.
    pub receive_buffer: ByteSize,
}

impl Default for SyslogListenerConfig {
    fn default() -> Self {
        SyslogListenerConfig {
            protocol: SyslogProtocol::Udp,
            listen: "0.0.0.0:514".into(),
            source: "syslog".into(),
            format: Format::Syslog,
            max_frame: ByteSize(64 << 10),
            max_connections: 4096,
            idle_timeout: Duration::from_secs(300),
            tls_cert: None,
            tls_key: None,
            queue: ByteSize(64 << 20),
            receive_buffer: ByteSize(8 << 20),
        }
    }
}

/// One RADIUS accounting listener (`[[collect.radius]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusListenerConfig {
    /// The address and port to listen on (`0.0.0.0:1813`).
    pub listen: String,
    /// The source id written into every record (`bras-radius`); unique among listeners.
    pub source: String,
    /// The NAS allowed to send, each with its shared secret (`[[collect.radius.clients]]`).
    /// Packets from other addresses are dropped and counted as `unknown_client`.
    pub clients: Vec<RadiusClientConfig>,
    /// How many recent packets are remembered to recognise retransmissions (same client
    /// address, identifier and Request Authenticator): one already written is answered again
    /// without being written twice.
    pub retransmission_cache: usize,
    /// How long a packet is remembered for retransmissions.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub retransmission_window: Duration,
    /// Most bytes of received packets waiting for the log. When it is full, packets are not
    /// answered (the NAS retries) and are counted as `dropped_overflow`.
    pub queue: ByteSize,
    /// The socket receive buffer asked of the kernel (SO_RCVBUF).
    pub receive_buffer: ByteSize,
}

impl Default for RadiusListenerConfig {
    fn default() -> Self {
        RadiusListenerConfig {
            listen: "0.0.0.0:1813".into(),
            source: "radius".into(),
            clients: Vec::new(),
            retransmission_cache: 65_536,
            retransmission_window: Duration::from_secs(60),
            queue: ByteSize(16 << 20),
            receive_buffer: ByteSize(8 << 20),
        }
    }
}

/// A NAS (or a network of them) allowed to send accounting (`[[collect.radius.clients]]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusClientConfig {
    /// The client's IP address (`192.0.2.10`) or network (`10.0.0.0/8`); the most specific
    /// entry matching a packet's source address applies.
    pub address: String,
    /// The shared secret. Prefer `secret_env` so that it stays out of the file.
    pub secret: Option<Secret>,
    /// The environment variable holding the shared secret (read at start).
    pub secret_env: Option<String>,
}

/// Where a file found at the first start, with no position remembered in the log, is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// Its first line.
    Beginning,
    /// Its current end: only lines written from now on.
    End,
}

/// Log files tailed line by line (`[[collect.files]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FileSourceConfig {
    /// Glob patterns of the files to tail (`["/var/log/olt/*.log"]`: `*`, `?`, `[a-z]` and `**`
    /// for any directories). They are expanded again every `poll_interval`, so files created
    /// later are picked up. Do not match compressed rotations (`*.gz`): they would be read as lines.
    pub paths: Vec<String>,
    /// The source id written into every record (`olt-files`); unique among collectors.
    pub source: String,
    /// The format hint written into every record (`syslog`, `json`, `kv`, `auto`, ...).
    pub format: Format,
    /// Longest line kept whole (`64KiB`). A longer one is cut at this size and counted as
    /// `oversized`; the rest of it is skipped.
    pub max_line: ByteSize,
    /// How often the patterns are expanded again and the files looked at for new lines,
    /// rotation and truncation (while a file has lines to read, it is read without waiting).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// A last line without its newline is written (and counted as `partial_flushed`) once the
    /// file has not grown for this long; `0s`: wait for its newline however long it takes.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub flush_partial_after: Duration,
    /// A file that left its path (renamed by rotation, or deleted) is read to its end and kept
    /// open until it has not grown for this long (its writer may still finish a line in it),
    /// then closed and its position forgotten.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub rotate_wait: Duration,
    /// `beginning` or `end`: where a file found at the very first start (no position remembered
    /// for it in the log) is read from. Files created later are always read from their beginning.
    pub read_from: ReadFrom,
    /// Most files tailed at once; further matches are left alone (counted as `files_skipped`)
    /// until others close.
    pub max_files: usize,
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        FileSourceConfig {
            paths: Vec::new(),
            source: "files".into(),
            format: Format::Auto,
            max_line: ByteSize(64 << 10),
            poll_interval: Duration::from_millis(250),
            flush_partial_after: Duration::from_secs(5),
            rotate_wait: Duration::from_secs(5),
            read_from: ReadFrom::Beginning,
            max_files: 1024,
        }
    }
}

/// One HTTP listener (`[[collect.http]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpListenerConfig {
    /// The address and port to listen on (`0.0.0.0:8088`).
    pub listen: String,
    /// The source id written into every record (`probes-http`); unique among collectors.
    pub source: String,
    /// The format hint written into every record (`json`, `kv`, `syslog`, `auto`, ...).
    pub format: Format,
    /// The bearer token senders must present (`Authorization: Bearer <token>`). Prefer
    /// `token_file` or `token_env` so that it stays out of this file. It is never logged.
    pub token: Option<Secret>,
    /// A file holding the token (read at start; surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
    /// The environment variable holding the token (read at start).
    pub token_env: Option<String>,
    /// Largest request body (`16MiB`); a larger one is refused with 413 and counted as
    /// `requests_too_large`.
    pub max_body: ByteSize,
    /// Longest record (line) kept whole (`64KiB`); a longer one is cut at this size and
    /// counted as `oversized`.
    pub max_line: ByteSize,
    /// Most bytes of received records waiting for the log (`64MiB`). A request that does not fit
    /// is refused with 503 and `Retry-After` (counted as `requests_overloaded`): the sender retries.
    pub queue: ByteSize,
    /// Most connections open at once; one more is closed as soon as it is accepted (counted as
    /// `connections_refused`).
    pub max_connections: usize,
    /// A connection that moves no byte either way for this long is closed (counted as
    /// `idle_timeouts`): half-open, slow and forgotten keep-alive connections do not pile up.
    /// Keep it above the longest the log may take to commit a request's records.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
    /// HTTPS: the server certificate chain, PEM (leaf first). With `tls_key`; without both, plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: the server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpListenerConfig {
    fn default() -> Self {
        HttpListenerConfig {
            listen: "0.0.0.0:8088".into(),
            source: "http".into(),
            format: Format::Auto,
            token: None,
            token_file: None,
            token_env: None,
            max_body: ByteSize(16 << 20),
            max_line: ByteSize(64 << 10),
            queue: ByteSize(64 << 20),
            max_connections: 1024,
            idle_timeout: Duration::from_secs(60),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// A shared secret: shown as `***` in debug output and logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> String {
        "Secret".into()
    }
    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

/// A size in bytes, written as an integer or with a binary unit: `65536`, `64KiB`, `8MiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// `64KiB` -> 65536; `None` when the text is not a size.
    pub fn parse(text: &str) -> Option<ByteSize> {
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            _ => return None,
        };
        number.checked_mul(1 << shift).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.trailing_zeros() >= shift {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes: an integer, or a string such as \"64KiB\", \"8MiB\" or \"1GiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "{v:?} is not a size: write an integer (bytes) or a number with B, KiB, MiB or GiB"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> String {
        "ByteSize".into()
    }
    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

/// An IP network (`10.0.0.0/8`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    pub address: IpAddr,
    pub prefix: u8,
}

impl IpNetwork {
    pub fn parse(text: &str) -> Result<IpNetwork, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr =
            address.trim().parse().map_err(|_| format!("{text:?} is not an IP address or network (10.0.0.0/8)"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(IpNetwork { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Whether a source id is usable as a stage name and in metrics.
fn valid_source_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl CollectConfig {
    /// Whether any listener is configured.
    pub fn is_empty(&self) -> bool {
        self.syslog.is_empty() && self.radius.is_empty() && self.files.is_empty() && self.http.is_empty()
    }

    /// Every problem of the section, each with its dotted key under `prefix`.
    pub fn validate(&self, prefix: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !(1..=16).contains(&self.workers) {
            problems.push(ConfigProblem::new(config_key(prefix, "workers"), "must be 1 to 16"));
        }
        let mut sources = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        let mut check_listen = |problems: &mut Vec<ConfigProblem>, key: &str, listen: &str, udp: bool| match listen
            .parse::<SocketAddr>(
        ) {
            Ok(addr) => {
                if addr.port() != 0 && !addresses.insert((addr, udp)) {
                    problems.push(ConfigProblem::new(
                        format!("{key}.listen"),
                        format!("{listen} is already used by another listener of the same transport"),
                    ));
                }
            }
            Err(_) => problems.push(ConfigProblem::new(
                format!("{key}.listen"),
                format!("{listen:?} is not an address and port (0.0.0.0:514, [::]:6514)"),
            )),
        };
        let mut check_source = |problems: &mut Vec<ConfigProblem>, key: &str, source: &str| {
            if !valid_source_id(source) {
                problems.push(ConfigProblem::new(
                    format!("{key}.source"),
                    format!("{source:?}: use 1 to 100 letters, digits, '.', '_' or '-'"),
                ));
            } else if !sources.insert(source.to_owned()) {
                problems.push(ConfigProblem::new(
                    format!("{key}.source"),
                    format!("{source:?} is the source id of another collector; give each its own"),
                ));
            }
        };
        for (i, listener) in self.syslog.iter().enumerate() {
            let key = config_key(prefix, &format!("syslog[{i}]"));
            let udp = listener.protocol == SyslogProtocol::Udp;
            check_listen(&mut problems, &key, &listener.listen, udp);
            check_source(&mut problems, &key, &listener.source);
            listener.validate(&key, &mut problems);
        }
        for (i, listener) in self.radius.iter().enumerate() {
            let key = config_key(prefix, &format!("radius[{i}]"));
            check_listen(&mut problems, &key, &listener.listen, true);
            check_source(&mut problems, &key, &listener.source);
            listener.validate(&key, &mut problems);
        }
        for (i, files) in self.files.iter().enumerate() {
            let key = config_key(prefix, &format!("files[{i}]"));
            check_source(&mut problems, &key, &files.source);
            files.validate(&key, &mut problems);
        }
        for (i, listener) in self.http.iter().enumerate() {
            let key = config_key(prefix, &format!("http[{i}]"));
            check_listen(&mut problems, &key, &listener.listen, false);
            check_source(&mut problems, &key, &listener.source);
            listener.validate(&key, &mut problems);
        }
        problems
    }
}

const MIN_FRAME: u64 = 480;
const MAX_FRAME: u64 = 16 << 20;

impl SyslogListenerConfig {
    fn validate(&self, key: &str, problems: &mut Vec<ConfigProblem>) {
        let mut problem =
            |field: &str, message: String| problems.push(ConfigProblem::new(format!("{key}.{field}"), message));
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.max_frame.0) {
            problem(
                "max_frame",
                format!("must be between 480 (the RFC 5426 minimum) and 16MiB, not {}", self.max_frame),
            );
        }
        if self.queue.0 < self.max_frame.0.max(1 << 16) {
            problem("queue", format!("must be at least max_frame and 64KiB, not {}", self.queue));
        }
        if self.queue.0 > 4 << 30 {
            problem("queue", format!("must be at most 4GiB, not {}", self.queue));
        }
        if self.receive_buffer.0 > 1 << 30 {
            problem("receive_buffer", format!("must be at most 1GiB, not {}", self.receive_buffer));
        }
        check_connections(self.max_connections, self.idle_timeout, &mut problem);
        match self.protocol {
            SyslogProtocol::Tls => {
                if self.tls_cert.is_none() {
                    problem("tls_cert", "protocol = \"tls\" needs the certificate chain (PEM file)".into());
                }
                if self.tls_key.is_none() {
                    problem("tls_key", "protocol = \"tls\" needs the private key (PEM file)".into());
                }
            }
            SyslogProtocol::Udp | SyslogProtocol::Tcp => {
                if self.tls_cert.is_some() || self.tls_key.is_some() {
                    let field = if self.tls_cert.is_some() { "tls_cert" } else { "tls_key" };
                    problem(field, format!("only used with protocol = \"tls\", not {:?}", self.protocol.as_str()));
                }
            }
        }
    }
}

impl RadiusListenerConfig {
    fn validate(&self, key: &str, problems: &mut Vec<ConfigProblem>) {
        if self.clients.is_empty() {
            problems.push(ConfigProblem::new(
                format!("{key}.clients"),
                "no client: add [[collect.radius.clients]] with the address and secret of each NAS",
            ));
        }
        if self.retransmission_cache == 0 || self.retransmission_cache > 10_000_000 {
            problems.push(ConfigProblem::new(format!("{key}.retransmission_cache"), "must be 1 to 10000000"));
        }
        if self.retransmission_window < Duration::from_secs(1) {
            problems.push(ConfigProblem::new(format!("{key}.retransmission_window"), "must be at least 1s"));
        }
        if self.queue.0 < 1 << 16 || self.queue.0 > 4 << 30 {
            problems
                .push(ConfigProblem::new(format!("{key}.queue"), format!("must be 64KiB to 4GiB, not {}", self.queue)));
        }
        if self.receive_buffer.0 > 1 << 30 {
            problems.push(ConfigProblem::new(
                format!("{key}.receive_buffer"),
                format!("must be at most 1GiB, not {}", self.receive_buffer),
            ));
        }
        for (i, client) in self.clients.iter().enumerate() {
            let key = format!("{key}.clients[{i}]");
            if let Err(message) = IpNetwork::parse(&client.address) {
                problems.push(ConfigProblem::new(format!("{key}.address"), message));
            }
            match (&client.secret, &client.secret_env) {
                (Some(_), Some(_)) => problems
                    .push(ConfigProblem::new(format!("{key}.secret_env"), "set either secret or secret_env, not both")),
                (None, None) => problems.push(ConfigProblem::new(
                    format!("{key}.secret"),
                    "missing: set secret, or secret_env to the environment variable that holds it",
                )),
                (Some(secret), None) if secret.0.is_empty() => {
                    problems.push(ConfigProblem::new(format!("{key}.secret"), "must not be empty"))
                }
                _ => {}
            }
        }
    }
}

/// Longest line a file or HTTP collector may be configured to keep whole.
const MAX_LINE: u64 = 16 << 20;

/// The bounds shared by the TCP and HTTP listeners: `max_connections` and `idle_timeout`.
fn check_connections(max_connections: usize, idle_timeout: Duration, mut problem: impl FnMut(&str, String)) {
    if max_connections == 0 || max_connections > 1_000_000 {
        problem("max_connections", format!("must be 1 to 1000000, not {max_connections}"));
    }
    if idle_timeout < Duration::from_secs(1) {
        problem("idle_timeout", "must be at least 1s".into());
    }
}

fn check_max_line(key: &str, max_line: ByteSize, problems: &mut Vec<ConfigProblem>) {
    if !(1..=MAX_LINE).contains(&max_line.0) {
        problems.push(ConfigProblem::new(
            format!("{key}.max_line"),
            format!("must be between 1 byte and 16MiB, not {max_line}"),
        ));
    }
}

impl FileSourceConfig {
    fn validate(&self, key: &str, problems: &mut Vec<ConfigProblem>) {
        let mut problem =
            |field: &str, message: String| problems.push(ConfigProblem::new(format!("{key}.{field}"), message));
        if self.paths.is_empty() {
            problem("paths", "no pattern: list the files to tail (paths = [\"/var/log/olt/*.log\"])".into());
        }
        for (i, pattern) in self.paths.iter().enumerate() {
            if pattern.trim().is_empty() {
                problem(&format!("paths[{i}]"), "must not be empty".into());
            } else if let Err(error) = glob::Pattern::new(pattern) {
                problem(&format!("paths[{i}]"), format!("{pattern:?} is not a glob pattern: {error}"));
            }
        }
        if self.poll_interval < Duration::from_millis(10) || self.poll_interval > Duration::from_secs(60) {
            problem("poll_interval", "must be 10ms to 60s".into());
        }
        if !self.flush_partial_after.is_zero() && self.flush_partial_after < self.poll_interval {
            problem("flush_partial_after", "must be 0s (never) or at least poll_interval".into());
        }
        if self.rotate_wait < self.poll_interval {
            problem("rotate_wait", "must be at least poll_interval".into());
        }
        if self.max_files == 0 || self.max_files > 100_000 {
            problem("max_files", format!("must be 1 to 100000, not {}", self.max_files));
        }
        check_max_line(key, self.max_line, problems);
    }
}

impl HttpListenerConfig {
    fn validate(&self, key: &str, problems: &mut Vec<ConfigProblem>) {
        let mut problem =
            |field: &str, message: String| problems.push(ConfigProblem::new(format!("{key}.{field}"), message));
        let set = [self.token.is_some(), self.token_file.is_some(), self.token_env.is_some()];
        match set.iter().filter(|s| **s).count() {
            0 => problem(
                "token",
                "missing: set token_env (an environment variable) or token_file (a file) holding the bearer token"
                    .into(),
            ),
            1 => {
                if self.token.as_ref().is_some_and(|t| t.0.trim().is_empty()) {
                    problem("token", "must not be empty".into());
                }
            }
            _ => problem("token", "set only one of token, token_file and token_env".into()),
        }
        if self.max_body.0 < 1 || self.max_body.0 > 1 << 30 {
            problem("max_body", format!("must be 1 byte to 1GiB, not {}", self.max_body));
        }
        if self.queue.0 < self.max_body.0.max(1 << 16) || self.queue.0 > 4 << 30 {
            problem("queue", format!("must be at least max_body and 64KiB, and at most 4GiB, not {}", self.queue));
        }
        check_connections(self.max_connections, self.idle_timeout, &mut problem);
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let field = if self.tls_cert.is_some() { "tls_key" } else { "tls_cert" };
            problem(field, "HTTPS needs both tls_cert and tls_key".into());
        }
        check_max_line(key, self.max_line, problems);
    }

    /// The bearer token, from the file, the token file or the environment variable.
    pub fn resolve_token(&self) -> Result<Secret, String> {
        let token = if let Some(token) = &self.token {
            token.0.clone()
        } else if let Some(path) = &self.token_file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("token_file {}: cannot read the bearer token: {e}", path.display()))?
        } else if let Some(var) = &self.token_env {
            std::env::var(var).map_err(|_| {
                format!(
                    "the environment variable {var} (token_env) is unset or not UTF-8; export it with the bearer token"
                )
            })?
        } else {
            return Err("no bearer token configured: set token_env or token_file".into());
        };
        let token = token.trim();
        if token.is_empty() {
            return Err("the bearer token is empty".into());
        }
        Ok(Secret(token.to_owned()))
    }
}

impl RadiusClientConfig {
    /// The secret, from the file or from the environment variable named by `secret_env`.
    pub fn resolve_secret(&self) -> Result<Vec<u8>, String> {
        if let Some(secret) = &self.secret {
            return Ok(secret.0.as_bytes().to_vec());
        }
        let Some(var) = &self.secret_env else {
            return Err(format!("RADIUS client {}: no secret configured", self.address));
        };
        match std::env::var(var) {
            Ok(secret) if !secret.is_empty() => Ok(secret.into_bytes()),
            _ => Err(format!(
                "RADIUS client {}: the environment variable {var} (secret_env) is unset or empty; export it with the shared secret",
                self.address
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_print_back() {
        assert_eq!(ByteSize::parse("64KiB"), Some(ByteSize(65536)));
        assert_eq!(ByteSize::parse("8MiB"), Some(ByteSize(8 << 20)));
        assert_eq!(ByteSize::parse("1000"), Some(ByteSize(1000)));
        assert_eq!(ByteSize::parse("12 GiB"), Some(ByteSize(12 << 30)));
        assert_eq!(ByteSize::parse("lots"), None);
        assert_eq!(ByteSize::parse("1kb"), None);
        assert_eq!(ByteSize::parse("99999999999999999999GiB"), None);
        assert_eq!(ByteSize(65536).to_string(), "64KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn networks_match_addresses() {
        let net = IpNetwork::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.1.2".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped IPv6 addresses match");
        let host = IpNetwork::parse("127.0.0.1").unwrap();
        assert_eq!(host.prefix, 32);
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        assert!(IpNetwork::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(IpNetwork::parse("10.0.0.0/33").is_err());
        assert!(IpNetwork::parse("bras-1").is_err());
        assert!(IpNetwork::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
    }

    #[test]
    fn the_default_has_no_listener_and_is_valid() {
        let config = CollectConfig::default();
        assert!(config.is_empty());
        assert!(config.validate("collect").is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
            [[syslog]]
            protocol = "tls"
            listen = "nowhere"
            source = "bras syslog"
            max_frame = "100"

            [[syslog]]
            protocol = "tcp"
            listen = "127.0.0.1:6514"
            source = "dup"
            tls_key = "key.pem"

            [[radius]]
            listen = "127.0.0.1:1813"
            source = "dup"

            [[radius.clients]]
            address = "10.0.0.0/40"
        "#;
        let config: CollectConfig = toml::from_str(text).unwrap();
        let problems = config.validate("collect");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "collect.syslog[0].listen",
            "collect.syslog[0].source",
            "collect.syslog[0].max_frame",
            "collect.syslog[0].tls_cert",
            "collect.syslog[0].tls_key",
            "collect.syslog[1].tls_key",
            "collect.radius[0].source",
            "collect.radius[0].clients[0].address",
            "collect.radius[0].clients[0].secret",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert_eq!(problems.len(), 9, "{problems:?}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let client =
            RadiusClientConfig { address: "10.0.0.1".into(), secret: Some(Secret("hunter2".into())), secret_env: None };
        assert!(!format!("{client:?}").contains("hunter2"));
        assert_eq!(client.resolve_secret().unwrap(), b"hunter2");
        let from_env = RadiusClientConfig {
            address: "10.0.0.1".into(),
            secret: None,
            secret_env: Some("LUX_COLLECT_TEST_SECRET_THAT_IS_UNSET".into()),
        };
        assert!(from_env.resolve_secret().unwrap_err().contains("LUX_COLLECT_TEST_SECRET_THAT_IS_UNSET"));
        let http = HttpListenerConfig { token: Some(Secret(" hunter3 ".into())), ..Default::default() };
        assert!(!format!("{http:?}").contains("hunter3"));
        assert_eq!(http.resolve_token().unwrap().0, "hunter3");
        let from_env =
            HttpListenerConfig { token_env: Some("LUX_COLLECT_TEST_TOKEN_THAT_IS_UNSET".into()), ..Default::default() };
        assert!(from_env.resolve_token().unwrap_err().contains("LUX_COLLECT_TEST_TOKEN_THAT_IS_UNSET"));
    }

    #[test]
    fn file_and_http_problems_are_reported_with_their_keys() {
        let text = r#"
            [[files]]
            paths = ["/var/log/[olt.log", ""]
            source = "dup"
            poll_interval = "1ms"
            max_line = 0

            [[files]]
            source = "files-b"

            [[http]]
            listen = "127.0.0.1:8088"
            source = "dup"
            token = "t"
            token_env = "T"
            tls_cert = "cert.pem"
            max_body = "64KiB"
            queue = "1KiB"
        "#;
        let config: CollectConfig = toml::from_str(text).unwrap();
        let problems = config.validate("collect");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "collect.files[0].paths[0]",
            "collect.files[0].paths[1]",
            "collect.files[0].poll_interval",
            "collect.files[0].max_line",
            "collect.files[1].paths",
            "collect.http[0].source",
            "collect.http[0].token",
            "collect.http[0].tls_key",
            "collect.http[0].queue",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert_eq!(problems.len(), 9, "{problems:?}");
        let missing: CollectConfig = toml::from_str("[[http]]\nlisten = \"127.0.0.1:0\"").unwrap();
        assert_eq!(missing.validate("collect")[0].key, "collect.http[0].token");
    }
}
