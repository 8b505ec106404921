//! PEM (RFC 7468) for certificates: the form `openssl` and operators exchange roots in.
//!
//! der's `pem` module is there because cms 0.2 always enables der's `pem` feature.

use super::error::TimestampError;
use super::MAX_TOKEN_SIZE;

/// Most certificates one PEM text may hold.
pub const MAX_PEM_CERTIFICATES: usize = 64;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The DER of every `CERTIFICATE` block in `text`, in order. Text outside the blocks (openssl's
/// human-readable dumps, comments) is ignored; at least one block is required.
pub fn certificates_from_pem(text: &str) -> Result<Vec<Vec<u8>>, TimestampError> {
    let limit = MAX_PEM_CERTIFICATES * MAX_TOKEN_SIZE * 2;
    if text.len() > limit {
        return Err(TimestampError::TooLarge {
            what: "PEM text",
            size: text.len(),
            limit,
        });
    }
    let mut certificates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start..];
        let end = after_begin
            .find(END)
            .ok_or_else(|| TimestampError::BadPem {
                detail: format!("{BEGIN} without {END}"),
            })?;
        let block = &after_begin[..end + END.len()];
        if certificates.len() == MAX_PEM_CERTIFICATES {
            return Err(TimestampError::BadPem {
                detail: format!("more than {MAX_PEM_CERTIFICATES} certificates"),
            });
        }
        let (label, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|error| TimestampError::BadPem {
                detail: format!("certificate {}: {error}", certificates.len()),
            })?;
        if label != "CERTIFICATE" {
            return Err(TimestampError::BadPem {
                detail: format!("expected label CERTIFICATE, found {label}"),
            });
        }
        certificates.push(der);
        rest = &after_begin[end + END.len()..];
    }
    if certificates.is_empty() {
        return Err(TimestampError::BadPem {
            detail: format!("no {BEGIN} block"),
        });
    }
    Ok(certificates)
}

/// A certificate in PEM, lines of 64 characters ending in `\n`.
pub fn certificate_to_pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .expect("base64 of a certificate-sized input always fits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_several_certificates() {
        let first = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let second = vec![0x30, 0x03, 0x02, 0x01, 0x02];
        let text = format!(
            "subject=CN = x\n{}junk\n{}",
            certificate_to_pem(&first),
            certificate_to_pem(&second)
        );
        assert_eq!(certificates_from_pem(&text), Ok(vec![first, second]));
    }

    #[test]
    fn rejects_text_without_certificates_or_with_a_broken_block() {
        assert!(matches!(
            certificates_from_pem("hello"),
            Err(TimestampError::BadPem { .. })
        ));
        assert!(matches!(
            certificates_from_pem(&format!("{BEGIN}\nAAAA\n")),
            Err(TimestampError::BadPem { .. })
        ));
        assert!(matches!(
            certificates_from_pem(&format!("{BEGIN}\n!!!!\n{END}\n")),
            Err(TimestampError::BadPem { .. })
        ));
    }
}
