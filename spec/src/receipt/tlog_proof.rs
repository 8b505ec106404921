//! The C2SP tlog-proof form of a receipt (`c2sp.org/tlog-proof@v1`): the leaf, its index, the
//! inclusion proof and the checkpoint note, without timestamps.

use base64::Engine as _;

use super::{Receipt, ReceiptError, MAX_RECEIPT_BYTES, RECEIPT_FORMAT, TLOG_PROOF_HEADER};
use crate::hash::Hash;
use crate::merkle::MAX_INCLUSION_PROOF_LEN;

impl Receipt {
    /// The receipt as a C2SP tlog-proof. The leaf, when the receipt has it, goes in the
    /// `extra` line; timestamps have no place in a tlog-proof and are left out.
    pub fn to_tlog_proof(&self) -> String {
        let mut text = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(leaf) = &self.leaf {
            text.push_str("extra ");
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(leaf));
            text.push('\n');
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Reads a C2SP tlog-proof. The leaf is `leaf` if given, else the proof's `extra` data
    /// (which tlog-proof leaves unauthenticated: verification checks it against the tree).
    pub fn from_tlog_proof(text: &str, leaf: Option<&[u8]>) -> Result<Receipt, ReceiptError> {
        let bad = |reason: &str| ReceiptError::TlogProof(reason.to_string());
        if text.len() > MAX_RECEIPT_BYTES {
            return Err(bad("larger than the receipt limit"));
        }
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("missing index line"))?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            line = lines.next().ok_or_else(|| bad("missing index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| bad("expected 'index N' with N in decimal, no leading zeros"))?;
        let mut inclusion_proof = Vec::new();
        for line in lines {
            if inclusion_proof.len() == MAX_INCLUSION_PROOF_LEN {
                return Err(bad("too many inclusion proof lines"));
            }
            inclusion_proof
                .push(Hash::from_base64(line).map_err(|_| bad("a proof line is not a hash"))?);
        }
        let leaf = match leaf {
            Some(leaf) => leaf.to_vec(),
            None => extra.ok_or_else(|| {
                bad("the proof has no extra data; the leaf must be given to make a receipt")
            })?,
        };
        let receipt = Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index,
            leaf_hash: Hash::of_leaf(&leaf),
            leaf: Some(leaf),
            inclusion_proof,
            checkpoint: checkpoint.to_string(),
            timestamps: Vec::new(),
        };
        receipt.check_shape()?;
        Ok(receipt)
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}
