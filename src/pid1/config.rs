//! The per-node settings a booted image reads from QEMU's fw_cfg.
//!
//! The kernel command line is part of the launch measurement and therefore identical
//! on every node, so whatever differs between nodes (ports, name, operator key, the
//! VCEK) has to come from somewhere unmeasured: the host puts one small JSON file into
//! fw_cfg (`-fw_cfg name=opt/frostamp/config,file=node.json`), and the kernel's
//! `CONFIG_FW_CFG_SYSFS` exposes it as [`FW_CFG_PATH`].
//!
//! ```json
//! { "version": 1, "name": "node1", "public": "0.0.0.0:8443", "peer": "0.0.0.0:9443",
//!   "operator_key": "3056301006072a8648ce3d0201…", "vcek": "3082…" }
//! ```
//!
//! # Nothing in it is trusted
//!
//! The host writes this file, so it is exactly as trustworthy as the host (DESIGN §4:
//! "not measured, untrusted, supplied at run time by the operator"). Field by field:
//!
//! - `name`: a label in logs and the subject of the self-signed TLS certificate. Peers
//!   and the operator pin the TLS key through attestation, never through the name.
//! - `public`, `peer`: where the node listens. Wrong values cost availability only.
//! - `operator_key`: the public key that authorizes lifecycle calls (configure the peer
//!   list, start a DKG, upload a certificate, repair). A host that substitutes its own
//!   key becomes "the operator" of this node, which the operator is trusted with anyway
//!   for availability only: it can halt the node, point it at other peers, start a new
//!   key epoch or ask for a repair. It cannot: make peers admit a node that does not
//!   attest to the same measurement (every peer checks the SNP report itself); obtain a
//!   share (shares travel only over attested channels to nodes running this image);
//!   install a certificate whose key is not the group key or whose measurement is not
//!   the node's own; or make the group key sign anything but well-formed, current
//!   timestamp tokens (every signer rebuilds what it signs). Nor can it read memory or
//!   change code: that is SEV-SNP's and the measurement's job.
//! - `vcek`: the chip's VCEK when the host's certificate table has none; verified
//!   against the AMD roots pinned in the binary before any use, so a wrong one only
//!   makes attestation fail.
//! - `insecure_dev_platform`: the development attestation platform (dev image only).
//!   A production node refuses a configuration that carries it: production binaries
//!   have no development attestation at all.
//! - `test_fault`: test-only fault injection, honoured only by `test-faults` builds.
//!
//! Decoding is strict (size limit, `deny_unknown_fields`, a version, every field
//! validated into a typed value); error messages never echo field values, because
//! `insecure_dev_platform` holds a private key.

use serde::Deserialize;
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// Where `CONFIG_FW_CFG_SYSFS` exposes the fw_cfg item `opt/frostamp/config`.
pub const FW_CFG_PATH: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/frostamp/config/raw";

/// The largest configuration accepted (a development platform PEM is about 2 KiB).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Default public HTTPS listen address.
pub const DEFAULT_PUBLIC: &str = "0.0.0.0:8443";
/// Default peer (mutual TLS) listen address.
pub const DEFAULT_PEER: &str = "0.0.0.0:9443";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error("configuration is {0} bytes, more than the {MAX_CONFIG_BYTES} accepted")]
    TooLarge(usize),
    /// Not JSON of the expected shape. Only the category, position and (for unknown,
    /// missing or duplicate fields) the field name are kept: never a value.
    #[error("configuration is not valid: {0}")]
    Syntax(String),
    /// A version this binary does not know.
    #[error("configuration version {0} is not supported (expected 1)")]
    Version(u32),
    /// A field that decoded but does not hold an acceptable value.
    #[error("configuration field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it (never its value).
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: u32,
    name: Option<String>,
    public: Option<String>,
    peer: Option<String>,
    operator_key: String,
    vcek: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    insecure_dev_platform: Option<Zeroizing<String>>,
    test_fault: Option<String>,
    time: Option<crate::time::config::TimeConfig>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Zeroizing::new))
}

/// A validated node configuration.
pub struct NodeConfig {
    /// Name for logs and the TLS certificate (1–64 of `A-Za-z0-9._-`).
    pub name: String,
    /// Public HTTPS listen address.
    pub public: SocketAddr,
    /// Peer listen address.
    pub peer: SocketAddr,
    /// Operator public key, hex SPKI DER (checked to decode as the operator key type).
    pub operator_key: String,
    /// VCEK DER supplied by the operator, if any.
    pub vcek: Option<Vec<u8>>,
    /// Development attestation platform (secret PEM), if any.
    pub insecure_dev_platform: Option<Zeroizing<String>>,
    /// Test-only fault injection.
    pub test_fault: Option<String>,
    /// The time servers (addresses; keys and quorum checked against the build's pins in
    /// the production build). Absent: the build's servers at their public addresses.
    pub time: Option<crate::time::config::TimeConfig>,
}

impl core::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("public", &self.public)
            .field("peer", &self.peer)
            .field("operator_key", &self.operator_key)
            .field("vcek", &self.vcek.as_ref().map(|v| v.len()))
            .field(
                "insecure_dev_platform",
                &self.insecure_dev_platform.as_ref().map(|_| "<redacted>"),
            )
            .field("test_fault", &self.test_fault)
            .field("time", &self.time)
            .finish()
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field,
        reason: reason.into(),
    }
}

fn syntax(e: &serde_json::Error) -> ConfigError {
    let msg = e.to_string();
    let named = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|p| msg.starts_with(p));
    let what = if named {
        // "unknown field `x`, expected one of …": names only, no values.
        msg.split(" at line").next().unwrap_or_default().to_string()
    } else {
        format!("{:?} error", e.classify())
    };
    ConfigError::Syntax(format!("{what} at line {} column {}", e.line(), e.column()))
}

fn addr(name: &'static str, v: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    v.as_deref()
        .unwrap_or(default)
        .parse()
        .map_err(|_| field(name, "expected IP:PORT"))
}

impl NodeConfig {
    /// Parse and validate the bytes of the fw_cfg item.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge(bytes.len()));
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| syntax(&e))?;
        if raw.version != 1 {
            return Err(ConfigError::Version(raw.version));
        }
        let name = raw.name.unwrap_or_else(|| "frostamp-node".into());
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(field("name", "expected 1 to 64 of A-Z a-z 0-9 . _ -"));
        }
        let public = addr("public", raw.public, DEFAULT_PUBLIC)?;
        let peer = addr("peer", raw.peer, DEFAULT_PEER)?;
        if public == peer {
            return Err(field("peer", "must differ from `public`"));
        }
        crate::api::auth::OperatorVerifier::new(Some(&raw.operator_key)).map_err(|_| {
            field(
                "operator_key",
                "expected the hex SPKI DER of an operator public key (frostamp operator init)",
            )
        })?;
        let vcek = raw
            .vcek
            .map(|h| hex::decode(h.trim()).map_err(|_| field("vcek", "expected hex DER")))
            .transpose()?;
        if vcek.as_ref().is_some_and(|v| v.is_empty()) {
            return Err(field("vcek", "empty"));
        }
        if let Some(pem) = &raw.insecure_dev_platform {
            if !pem.trim_start().starts_with("-----BEGIN ") {
                return Err(field("insecure_dev_platform", "expected a PEM block"));
            }
        }
        if let Some(f) = &raw.test_fault {
            if f.is_empty() || f.len() > 64 || !f.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(field("test_fault", "expected 1 to 64 printable characters"));
            }
        }
        if let Some(t) = &raw.time {
            t.node_policy().map_err(|e| field("time", e.to_string()))?;
        }
        Ok(Self {
            name,
            public,
            peer,
            operator_key: raw.operator_key.trim().to_string(),
            vcek,
            insecure_dev_platform: raw.insecure_dev_platform,
            test_fault: raw.test_fault,
            time: raw.time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator_hex() -> String {
        crate::api::auth::OperatorKey::generate(&mut rand_core::OsRng)
            .public_hex()
            .unwrap()
    }

    fn json(extra: &str) -> String {
        format!(
            r#"{{"version":1,"operator_key":"{}"{extra}}}"#,
            operator_hex()
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = NodeConfig::parse(json("").as_bytes()).unwrap();
        assert_eq!(c.name, "frostamp-node");
        assert_eq!(c.public, DEFAULT_PUBLIC.parse().unwrap());
        assert_eq!(c.peer, DEFAULT_PEER.parse().unwrap());
        assert!(c.vcek.is_none() && c.insecure_dev_platform.is_none() && c.test_fault.is_none());
    }

    #[test]
    fn full_config() {
        let c = NodeConfig::parse(
            json(r#","name":"node-3","public":"0.0.0.0:18443","peer":"0.0.0.0:19443","vcek":"3082","insecure_dev_platform":"-----BEGIN X-----\nAA==\n-----END X-----\n","test_fault":"bad-share""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(c.name, "node-3");
        assert_eq!(c.public.port(), 18443);
        assert_eq!(c.peer.port(), 19443);
        assert_eq!(c.vcek.as_deref(), Some(&[0x30, 0x82][..]));
        assert_eq!(c.test_fault.as_deref(), Some("bad-share"));
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("<redacted>") && !dbg.contains("BEGIN"),
            "{dbg}"
        );
    }

    #[test]
    fn failing_twins() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid"),
            ("{}".into(), "missing field `version`"),
            (json(r#","extra":1"#), "unknown field `extra`"),
            (json(r#","name":"a b""#), "`name`"),
            (json(r#","name":"""#), "`name`"),
            (json(r#","public":"8443""#), "`public`"),
            (json(r#","peer":"0.0.0.0:8443""#), "`peer`"),
            (json(r#","vcek":"zz""#), "`vcek`"),
            (json(r#","vcek":"""#), "`vcek`"),
            (
                json(r#","insecure_dev_platform":"secret-not-pem""#),
                "`insecure_dev_platform`",
            ),
            (json(r#","test_fault":"""#), "`test_fault`"),
            (
                r#"{"version":1,"operator_key":"00ff"}"#.into(),
                "`operator_key`",
            ),
            (r#"{"version":2,"operator_key":"00"}"#.into(), "version 2"),
            (json(r#","name":7"#), "not valid"),
        ];
        for (input, want) in cases {
            let e = NodeConfig::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e} (wanted {want})");
        }
    }

    #[test]
    fn errors_never_echo_values() {
        let secret = "-----BEGIN SECRET-----";
        for input in [
            format!(r#"{{"version":1,"operator_key":"{secret}"}}"#),
            format!(r#"{{"version":"{secret}"}}"#),
            format!(r#"{{"version":1,"insecure_dev_platform":7,"x":"{secret}"}}"#),
        ] {
            let e = NodeConfig::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn too_large() {
        let big = vec![b' '; MAX_CONFIG_BYTES + 1];
        assert_eq!(
            NodeConfig::parse(&big).unwrap_err(),
            ConfigError::TooLarge(MAX_CONFIG_BYTES + 1)
        );
    }
}
