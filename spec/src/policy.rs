//! The verifier's trust policy: which logs, which witnesses, which quorum of witnesses, and
//! (Cairn's addition) which RFC 3161 timestamp authorities and how many of them.
//!
//! The format is C2SP tlog-policy, a line-based text file:
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <member>...
//! quorum <name>|none
//! ```
//!
//! Cairn adds three line types, which a plain tlog-policy parser would refuse (so a Cairn policy
//! is never silently read as a weaker one):
//!
//! ```text
//! witness-key <name> <vkey>
//! tsa <name> <base64 of the DER trust anchor certificate> [<url>]
//! tsa-quorum <k>
//! ```
//!
//! `witness-key` gives a witness one more cosignature key (a rotation's new key beside the old
//! one). A log's key history (spec/docs/key-history.md), verified from the key of its `log`
//! line and attached with [`Policy::attach_key_history`], makes the policy accept every key the
//! history makes valid at a checkpoint's size (module `keys`).
//!
//! `tsa-quorum k` asks for valid RFC 3161 timestamps over the checkpoint from at least `k`
//! distinct trusted TSAs (default 0, or 1 when any `tsa` line is present). The page
//! `spec/docs/policy.md` has the full grammar, the limits and an example.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use crate::cosignature::CosignatureVerifier;
use crate::note::Ed25519Verifier;
use crate::timestamp::TrustAnchors;

/// Most bytes a policy file may have.
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Most logs, witnesses, groups or TSAs of each kind (tlog-policy recommends supporting 32).
pub const MAX_ENTRIES_PER_KIND: usize = 256;
/// Most bytes of one TSA trust anchor certificate.
pub const MAX_ANCHOR_BYTES: usize = 16 * 1024;

/// A parsed and checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The logs whose checkpoints are accepted, by origin (the log key's name).
    pub logs: Vec<PolicyLog>,
    /// The witnesses, by name.
    pub witnesses: Vec<PolicyWitness>,
    /// The rule a set of cosigning witnesses must satisfy.
    pub quorum: Quorum,
    /// The trusted timestamp authorities.
    pub tsas: Vec<PolicyTsa>,
    /// How many distinct trusted TSAs must have timestamped the checkpoint.
    pub tsa_quorum: usize,
    groups: BTreeMap<String, Group>,
}

/// A log the policy trusts.
#[derive(Debug, Clone)]
pub struct PolicyLog {
    /// The log's verifier key; its name is the log's origin.
    pub key: Ed25519Verifier,
    /// Where the log is served, if given.
    pub url: Option<String>,
    /// Its verified key history, once attached ([`Policy::attach_key_history`]).
    history: Option<crate::key_history::KeyHistory>,
}

/// A witness the policy knows.
#[derive(Debug, Clone)]
pub struct PolicyWitness {
    /// The name the policy uses for it (not necessarily its key name).
    pub name: String,
    /// Its cosignature verifier key.
    pub key: CosignatureVerifier,
    /// Its submission prefix, if given.
    pub url: Option<String>,
    /// Its other cosignature keys (`witness-key` lines: a rotation's old and new keys).
    extra_keys: Vec<CosignatureVerifier>,
}

/// A timestamp authority the policy trusts.
#[derive(Debug, Clone)]
pub struct PolicyTsa {
    /// The name the policy uses for it.
    pub name: String,
    /// The DER certificate that TSA responses must chain to.
    pub anchor_der: Vec<u8>,
    /// The same certificate, parsed, ready to verify tokens with.
    pub anchors: TrustAnchors,
    /// Where the TSA is served, if given.
    pub url: Option<String>,
}

/// The quorum rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quorum {
    /// No cosignature is required (`quorum none`).
    None,
    /// The named witness or group must have witnessed the checkpoint.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    threshold: usize,
    members: Vec<String>,
}

/// What is wrong with a policy file; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("policy is {found} bytes, more than the limit of {MAX_POLICY_BYTES}")]
    TooLarge {
        /// Its size.
        found: usize,
    },
    /// A byte that tlog-policy does not allow (a control character other than tab and newline).
    #[error("line {line}: control character 0x{byte:02x} is not allowed")]
    ControlCharacter {
        /// Where.
        line: usize,
        /// The byte.
        byte: u8,
    },
    /// The last line does not end in a newline.
    #[error("the policy must end with a newline")]
    MissingFinalNewline,
    /// A line whose first word is not a known line type.
    #[error("line {line}: unknown line type {found:?}; expected log, witness, witness-key, group, quorum, tsa or tsa-quorum")]
    UnknownLineType {
        /// Where.
        line: usize,
        /// The word found.
        found: String,
    },
    /// A line with the wrong number of words.
    #[error("line {line}: {expected}")]
    Malformed {
        /// Where.
        line: usize,
        /// What the line should look like.
        expected: &'static str,
    },
    /// A vkey that does not parse, or has the wrong signature type for its use.
    #[error("line {line}: bad key: {reason}")]
    BadKey {
        /// Where.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A name used twice, or a key listed twice.
    #[error("line {line}: {what} is defined twice")]
    Duplicate {
        /// Where.
        line: usize,
        /// What.
        what: String,
    },
    /// A group member or quorum name not defined on an earlier line.
    #[error("line {line}: {name:?} is not defined on an earlier line")]
    Undefined {
        /// Where.
        line: usize,
        /// The name.
        name: String,
    },
    /// A group threshold outside 1..=n.
    #[error("line {line}: threshold {found:?} must be all, any or a number from 1 to {members}")]
    BadThreshold {
        /// Where.
        line: usize,
        /// What was written.
        found: String,
        /// How many members the group has.
        members: usize,
    },
    /// Not exactly one quorum line.
    #[error("a policy needs exactly one quorum line, found {found}")]
    QuorumCount {
        /// How many were found.
        found: usize,
    },
    /// More entries of a kind than [`MAX_ENTRIES_PER_KIND`].
    #[error("line {line}: more than {MAX_ENTRIES_PER_KIND} {kind}")]
    TooMany {
        /// Where.
        line: usize,
        /// Which kind.
        kind: &'static str,
    },
    /// A TSA certificate that is not base64 or too large.
    #[error("line {line}: bad TSA certificate: {reason}")]
    BadAnchor {
        /// Where.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A TSA quorum larger than the number of TSAs.
    #[error("tsa-quorum {found} is larger than the {available} TSAs listed")]
    TsaQuorumTooLarge {
        /// The quorum.
        found: usize,
        /// The TSAs listed.
        available: usize,
    },
}

impl Policy {
    /// Parses and checks a policy file.
    pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { found: text.len() });
        }
        if !text.is_empty() && !text.ends_with(b"\n") {
            return Err(PolicyError::MissingFinalNewline);
        }
        let mut builder = Builder::default();
        for (line_index, raw_line) in text.split(|byte| *byte == b'\n').enumerate() {
            let line = line_index + 1;
            if let Some(byte) = raw_line
                .iter()
                .copied()
                .find(|byte| (*byte < 0x20 && *byte != b'\t') || *byte == 0x7f)
            {
                return Err(PolicyError::ControlCharacter { line, byte });
            }
            // High-bit bytes are opaque in tlog-policy; Cairn's names and URLs are Rust strings,
            // so they must at least be UTF-8.
            let raw_line = std::str::from_utf8(raw_line).map_err(|_| PolicyError::Malformed {
                line,
                expected: "UTF-8 text",
            })?;
            let words: Vec<&str> = raw_line
                .split([' ', '\t'])
                .filter(|word| !word.is_empty())
                .collect();
            if words.is_empty() || words[0].starts_with('#') {
                continue;
            }
            builder.line(line, &words)?;
        }
        builder.finish()
    }

    /// Whether the witnesses named in `cosigned` (policy names) satisfy the quorum.
    pub fn quorum_met(&self, cosigned: &BTreeSet<String>) -> bool {
        match &self.quorum {
            Quorum::None => true,
            Quorum::Named(name) => self.witnessed(name, cosigned),
        }
    }

    fn witnessed(&self, name: &str, cosigned: &BTreeSet<String>) -> bool {
        match self.groups.get(name) {
            // Groups only refer to names defined before them, so this recursion ends.
            Some(group) => {
                group
                    .members
                    .iter()
                    .filter(|member| self.witnessed(member, cosigned))
                    .count()
                    >= group.threshold
            }
            None => cosigned.contains(name),
        }
    }

    /// The log whose origin is `origin`, if the policy trusts one.
    pub fn log(&self, origin: &str) -> Option<&PolicyLog> {
        self.logs
            .iter()
            .find(|log| log.key.key_name().as_str() == origin)
    }
}

#[derive(Default)]
struct Builder {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    tsas: Vec<PolicyTsa>,
    groups: BTreeMap<String, Group>,
    names: BTreeSet<String>,
    quorums: Vec<Quorum>,
    tsa_quorum: Option<usize>,
    key_bytes: BTreeSet<Vec<u8>>,
}

impl Builder {
    fn line(&mut self, line: usize, words: &[&str]) -> Result<(), PolicyError> {
        match words[0] {
            "log" => self.log(line, &words[1..]),
            "witness" => self.witness(line, &words[1..]),
            "witness-key" => self.witness_key(line, &words[1..]),
            "group" => self.group(line, &words[1..]),
            "quorum" => self.quorum(line, &words[1..]),
            "tsa" => self.tsa(line, &words[1..]),
            "tsa-quorum" => self.tsa_quorum(line, &words[1..]),
            other => Err(PolicyError::UnknownLineType {
                line,
                found: other.chars().take(64).collect(),
            }),
        }
    }

    fn log(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let (vkey, url) = match args {
            [vkey] => (*vkey, None),
            [vkey, url] => (*vkey, Some(url.to_string())),
            _ => {
                return Err(PolicyError::Malformed {
                    line,
                    expected: "log <vkey> [<url>]",
                })
            }
        };
        check_count(line, self.logs.len(), "logs")?;
        let key = Ed25519Verifier::from_vkey(vkey).map_err(|error| PolicyError::BadKey {
            line,
            reason: error.to_string(),
        })?;
        self.check_new_key(line, key.public_key().as_bytes())?;
        self.logs.push(PolicyLog {
            key,
            url,
            history: None,
        });
        Ok(())
    }

    fn witness(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let (name, vkey, url) = match args {
            [name, vkey] => (*name, *vkey, None),
            [name, vkey, url] => (*name, *vkey, Some(url.to_string())),
            _ => {
                return Err(PolicyError::Malformed {
                    line,
                    expected: "witness <name> <vkey> [<url>]",
                })
            }
        };
        check_count(line, self.witnesses.len(), "witnesses")?;
        self.define_name(line, name)?;
        let key = CosignatureVerifier::from_vkey(vkey).map_err(|error| PolicyError::BadKey {
            line,
            reason: error.to_string(),
        })?;
        self.check_new_key(line, key.public_key().as_bytes())?;
        self.witnesses.push(PolicyWitness {
            name: name.to_string(),
            key,
            url,
            extra_keys: Vec::new(),
        });
        Ok(())
    }

    fn witness_key(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let [name, vkey] = args else {
            return Err(PolicyError::Malformed {
                line,
                expected: "witness-key <witness name> <vkey>",
            });
        };
        let extra: usize = self.witnesses.iter().map(|w| w.extra_keys.len()).sum();
        check_count(line, extra, "witness keys")?;
        let key = CosignatureVerifier::from_vkey(vkey).map_err(|error| PolicyError::BadKey {
            line,
            reason: error.to_string(),
        })?;
        self.check_new_key(line, key.public_key().as_bytes())?;
        let witness = self
            .witnesses
            .iter_mut()
            .find(|witness| witness.name == *name)
            .ok_or_else(|| PolicyError::Undefined {
                line,
                name: name.to_string(),
            })?;
        witness.extra_keys.push(key);
        Ok(())
    }

    fn group(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let [name, threshold, members @ ..] = args else {
            return Err(PolicyError::Malformed {
                line,
                expected: "group <name> all|any|<k> <member>...",
            });
        };
        if members.is_empty() {
            return Err(PolicyError::Malformed {
                line,
                expected: "group <name> all|any|<k> <member>... with at least one member",
            });
        }
        check_count(line, self.groups.len(), "groups")?;
        let mut seen = BTreeSet::new();
        for member in members {
            if *member == "none" || !self.names.contains(*member) {
                return Err(PolicyError::Undefined {
                    line,
                    name: member.to_string(),
                });
            }
            if !seen.insert(*member) {
                return Err(PolicyError::Duplicate {
                    line,
                    what: format!("group member {member:?}"),
                });
            }
        }
        let threshold = match *threshold {
            "all" => members.len(),
            "any" => 1,
            digits => parse_decimal(digits)
                .filter(|k| (1..=members.len()).contains(k))
                .ok_or_else(|| PolicyError::BadThreshold {
                    line,
                    found: digits.chars().take(32).collect(),
                    members: members.len(),
                })?,
        };
        self.define_name(line, name)?;
        self.groups.insert(
            name.to_string(),
            Group {
                threshold,
                members: members.iter().map(|member| member.to_string()).collect(),
            },
        );
        Ok(())
    }

    fn quorum(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let [name] = args else {
            return Err(PolicyError::Malformed {
                line,
                expected: "quorum <name>|none",
            });
        };
        if *name == "none" {
            self.quorums.push(Quorum::None);
        } else if self.names.contains(*name) {
            self.quorums.push(Quorum::Named(name.to_string()));
        } else {
            return Err(PolicyError::Undefined {
                line,
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn tsa(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let (name, anchor, url) = match args {
            [name, anchor] => (*name, *anchor, None),
            [name, anchor, url] => (*name, *anchor, Some(url.to_string())),
            _ => {
                return Err(PolicyError::Malformed {
                    line,
                    expected: "tsa <name> <base64 DER certificate> [<url>]",
                })
            }
        };
        check_count(line, self.tsas.len(), "TSAs")?;
        if anchor.len() > MAX_ANCHOR_BYTES * 4 / 3 + 4 {
            return Err(PolicyError::BadAnchor {
                line,
                reason: format!("more than {MAX_ANCHOR_BYTES} bytes"),
            });
        }
        let anchor_der = base64::engine::general_purpose::STANDARD
            .decode(anchor)
            .map_err(|error| PolicyError::BadAnchor {
                line,
                reason: error.to_string(),
            })?;
        if self.tsas.iter().any(|tsa| tsa.name == name) {
            return Err(PolicyError::Duplicate {
                line,
                what: format!("TSA {name:?}"),
            });
        }
        if self.tsas.iter().any(|tsa| tsa.anchor_der == anchor_der) {
            return Err(PolicyError::Duplicate {
                line,
                what: "TSA certificate".to_string(),
            });
        }
        let anchors =
            TrustAnchors::from_der(&[&anchor_der]).map_err(|error| PolicyError::BadAnchor {
                line,
                reason: error.to_string(),
            })?;
        self.tsas.push(PolicyTsa {
            name: name.to_string(),
            anchor_der,
            anchors,
            url,
        });
        Ok(())
    }

    fn tsa_quorum(&mut self, line: usize, args: &[&str]) -> Result<(), PolicyError> {
        let [count] = args else {
            return Err(PolicyError::Malformed {
                line,
                expected: "tsa-quorum <k>",
            });
        };
        if self.tsa_quorum.is_some() {
            return Err(PolicyError::Duplicate {
                line,
                what: "tsa-quorum".to_string(),
            });
        }
        let count = parse_decimal(count).ok_or(PolicyError::Malformed {
            line,
            expected: "tsa-quorum <k> with k a decimal number",
        })?;
        self.tsa_quorum = Some(count);
        Ok(())
    }

    fn define_name(&mut self, line: usize, name: &str) -> Result<(), PolicyError> {
        if name == "none" || !self.names.insert(name.to_string()) {
            return Err(PolicyError::Duplicate {
                line,
                what: format!("name {name:?}"),
            });
        }
        Ok(())
    }

    fn check_new_key(&mut self, line: usize, public_key: &[u8]) -> Result<(), PolicyError> {
        // tlog-policy: two vkeys wrapping the same public key are duplicates, whatever their names.
        if !self.key_bytes.insert(public_key.to_vec()) {
            return Err(PolicyError::Duplicate {
                line,
                what: "public key".to_string(),
            });
        }
        Ok(())
    }

    fn finish(self) -> Result<Policy, PolicyError> {
        if self.quorums.len() != 1 {
            return Err(PolicyError::QuorumCount {
                found: self.quorums.len(),
            });
        }
        let tsa_quorum = self
            .tsa_quorum
            .unwrap_or(usize::from(!self.tsas.is_empty()));
        if tsa_quorum > self.tsas.len() {
            return Err(PolicyError::TsaQuorumTooLarge {
                found: tsa_quorum,
                available: self.tsas.len(),
            });
        }
        let quorum = self.quorums.into_iter().next().unwrap_or(Quorum::None);
        Ok(Policy {
            logs: self.logs,
            witnesses: self.witnesses,
            quorum,
            tsas: self.tsas,
            tsa_quorum,
            groups: self.groups,
        })
    }
}

fn check_count(line: usize, current: usize, kind: &'static str) -> Result<(), PolicyError> {
    if current >= MAX_ENTRIES_PER_KIND {
        return Err(PolicyError::TooMany { line, kind });
    }
    Ok(())
}

/// A decimal number without leading zeros (except "0" itself), as tlog specs write numbers.
fn parse_decimal(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

mod keys;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keys;
