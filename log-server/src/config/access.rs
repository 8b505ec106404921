//! Who may use the log: principals, producers, client certificates and rate limits, as the
//! configuration gives them and as a start or a reload puts them in service.

use super::*;

impl Settings {
    /// The credentials of every principal and producer, and the rate limits, checked: what a
    /// start and a reload put in service.
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        let resolved = self.resolve_principals()?;
        let mut tokens: Vec<([u8; 32], Principal)> = resolved.principals.into_iter().collect();
        for (digest, name) in resolved.producers {
            tokens.push((
                digest,
                Principal {
                    name,
                    role: Role::Producer,
                },
            ));
        }
        Ok(Credentials {
            tokens,
            client_certificates: resolved.access.client_certificates,
            rate_limits: resolved.access.rate_limits,
        })
    }

    pub(super) fn resolve_principals(&self) -> Result<Resolved, ConfigError> {
        let mut producers = HashMap::new();
        for producer in &self.producers {
            let digest = parse_hex32(&producer.token_sha256).ok_or_else(|| ConfigError::Value {
                key: "producers.token_sha256",
                detail: format!("of `{}` is not 64 hex digits", producer.name),
            })?;
            producers.insert(digest, producer.name.clone());
        }
        let mut principals = HashMap::new();
        let mut client_certificates: Vec<([u8; 32], Principal)> = Vec::new();
        for principal in &self.principals {
            if principal.name.is_empty()
                || principal.name.len() > cairn_spec::event::MAX_PRINCIPAL_BYTES
            {
                return Err(ConfigError::Value {
                    key: "principals.name",
                    detail: format!("`{}` must be 1 to 256 bytes", principal.name),
                });
            }
            let named = Principal {
                name: principal.name.clone(),
                role: principal.role,
            };
            if principal.token_sha256.is_none() && principal.client_cert_sha256.is_none() {
                return Err(ConfigError::Value {
                    key: "principals",
                    detail: format!(
                        "`{}` has neither token_sha256 nor client_cert_sha256",
                        principal.name
                    ),
                });
            }
            if let Some(token) = &principal.token_sha256 {
                let digest = parse_hex32(token).ok_or_else(|| ConfigError::Value {
                    key: "principals.token_sha256",
                    detail: format!("of `{}` is not 64 hex digits", principal.name),
                })?;
                let known = principals.insert(digest, named.clone());
                if known.is_some() || producers.contains_key(&digest) {
                    return Err(ConfigError::Value {
                        key: "principals.token_sha256",
                        detail: format!("of `{}` is another principal's token", principal.name),
                    });
                }
            }
            if let Some(fingerprint) = &principal.client_cert_sha256 {
                let digest = parse_fingerprint(fingerprint).ok_or_else(|| ConfigError::Value {
                    key: "principals.client_cert_sha256",
                    detail: format!(
                        "of `{}` is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
                        principal.name
                    ),
                })?;
                if self.http.tls_client_ca_file.is_none() {
                    return Err(ConfigError::Value {
                        key: "principals.client_cert_sha256",
                        detail: format!(
                            "of `{}` needs [http] tls_client_ca_file: without it no client \
                             presents a certificate",
                            principal.name
                        ),
                    });
                }
                if client_certificates
                    .iter()
                    .any(|(known, _)| *known == digest)
                {
                    return Err(ConfigError::Value {
                        key: "principals.client_cert_sha256",
                        detail: format!(
                            "of `{}` is another principal's certificate",
                            principal.name
                        ),
                    });
                }
                client_certificates.push((digest, named));
            }
        }
        let count = producers.len() + principals.len() + client_certificates.len();
        if count > MAX_CREDENTIALS {
            return Err(ConfigError::Value {
                key: "principals",
                detail: format!(
                    "{count} credentials (tokens and certificates); at most {MAX_CREDENTIALS}"
                ),
            });
        }
        let rate_limits = self.rate_limits.resolve(|name| {
            producers.values().any(|producer| producer == name)
                || principals.values().any(|principal| principal.name == name)
                || client_certificates
                    .iter()
                    .any(|(_, principal)| principal.name == name)
        })?;
        Ok(Resolved {
            producers,
            principals,
            access: Access {
                client_certificates,
                rate_limits,
            },
        })
    }
}

/// The principals of a configuration, as [`ServerSettings`] holds them.
pub(super) struct Resolved {
    pub(super) producers: HashMap<[u8; 32], String>,
    pub(super) principals: HashMap<[u8; 32], Principal>,
    pub(super) access: Access,
}

impl RateLimitsConfig {
    /// Checks the limits; `known` tells a configured principal's name.
    fn resolve(&self, known: impl Fn(&str) -> bool) -> Result<RateLimits, ConfigError> {
        let check = |key: &'static str, rate: Rate| {
            if rate.requests_per_second == 0 || rate.burst == Some(0) {
                return Err(ConfigError::Value {
                    key,
                    detail: "requests_per_second and burst must be at least 1".into(),
                });
            }
            Ok(rate)
        };
        let default = match (self.requests_per_second, self.burst) {
            (Some(requests_per_second), burst) => Some(check(
                "rate_limits",
                Rate {
                    requests_per_second,
                    burst,
                },
            )?),
            (None, Some(_)) => {
                return Err(ConfigError::Value {
                    key: "rate_limits.burst",
                    detail: "needs rate_limits.requests_per_second".into(),
                })
            }
            (None, None) => None,
        };
        let mut principals = BTreeMap::new();
        for (name, rate) in &self.principals {
            if !known(name) {
                return Err(ConfigError::Value {
                    key: "rate_limits.principals",
                    detail: format!("`{name}` is not a configured principal or producer"),
                });
            }
            principals.insert(name.clone(), check("rate_limits.principals", *rate)?);
        }
        Ok(RateLimits {
            default,
            principals,
        })
    }
}

/// A SHA-256 fingerprint: 64 hex digits in either case, the pairs optionally separated by
/// colons (`openssl x509 -noout -fingerprint -sha256`, after its `sha256 Fingerprint=`).
pub(super) fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text
        .split_once('=')
        .filter(|(label, _)| label.to_ascii_lowercase().contains("fingerprint"))
        .map_or(text, |(_, value)| value);
    if text.contains(':') {
        let pairs: Vec<&str> = text.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
            return None;
        }
        parse_hex32(&pairs.concat())
    } else {
        parse_hex32(text)
    }
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex of SHA-256 of `token`: what `producers.token_sha256` holds.
pub fn token_digest_hex(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
