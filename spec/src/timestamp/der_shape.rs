//! A cheap walk over the tag-length-value structure of DER input before it is decoded.
//!
//! der 0.7 sorts every `SET OF` it decodes with an insertion sort, which is quadratic in the
//! number of elements; a 64 KiB input with thousands of tiny elements in one SET would cost
//! seconds of CPU. Walking the input first and refusing any constructed value with too many
//! elements, any nesting deeper than real tokens use, and any length that runs past its parent
//! keeps every later decode linear in the input.

/// Most elements any one constructed value may hold. Real tokens stay far below it: the
/// largest SETs are the certificates (bounded separately) and the signed attributes.
pub(crate) const MAX_ELEMENTS_PER_VALUE: usize = 256;

/// Deepest nesting of constructed values. A certificate inside a token inside a response is
/// about fifteen levels deep.
pub(crate) const MAX_DEPTH: usize = 32;

/// Checks that `input` is exactly one well-formed DER element (definite lengths, minimal
/// length octets, every child within its parent) within the limits above.
pub(crate) fn check(input: &[u8]) -> Result<(), String> {
    let consumed = element(input, 0, 0)?;
    if consumed != input.len() {
        return Err(format!(
            "{} bytes after the end of the DER value at offset {consumed}",
            input.len() - consumed
        ));
    }
    Ok(())
}

/// Reads one element starting at `input[0]` (which sits at `offset` of the whole input) and
/// returns its total length.
fn element(input: &[u8], offset: usize, depth: usize) -> Result<usize, String> {
    let first = *input
        .first()
        .ok_or_else(|| format!("expected a DER tag at offset {offset}, found the end"))?;
    let mut position = 1;
    if first & 0x1f == 0x1f {
        // High tag number form: base-128 digits, the last without the top bit. Three digits
        // are more than any standard uses.
        loop {
            let byte = *input
                .get(position)
                .ok_or_else(|| format!("truncated tag at offset {offset}"))?;
            position += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if position > 4 {
                return Err(format!("tag too long at offset {offset}"));
            }
        }
    }
    let length_byte = *input
        .get(position)
        .ok_or_else(|| format!("truncated length at offset {offset}"))?;
    position += 1;
    let length = if length_byte < 0x80 {
        usize::from(length_byte)
    } else {
        let count = usize::from(length_byte & 0x7f);
        if count == 0 {
            return Err(format!("indefinite length at offset {offset} is not DER"));
        }
        if count > 4 {
            return Err(format!("length of {count} octets at offset {offset}"));
        }
        let octets = input
            .get(position..position + count)
            .ok_or_else(|| format!("truncated length at offset {offset}"))?;
        position += count;
        if octets[0] == 0 {
            return Err(format!("non-minimal length at offset {offset}"));
        }
        let value = octets
            .iter()
            .fold(0usize, |value, octet| (value << 8) | usize::from(*octet));
        if value < 0x80 {
            return Err(format!("non-minimal length at offset {offset}"));
        }
        value
    };
    let end = position
        .checked_add(length)
        .filter(|end| *end <= input.len())
        .ok_or_else(|| {
            format!(
                "value at offset {offset} claims {length} bytes, only {} remain",
                input.len().saturating_sub(position)
            )
        })?;
    if first & 0x20 != 0 {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "nesting deeper than {MAX_DEPTH} at offset {offset}"
            ));
        }
        let mut child = position;
        let mut count = 0usize;
        while child < end {
            count += 1;
            if count > MAX_ELEMENTS_PER_VALUE {
                return Err(format!(
                    "more than {MAX_ELEMENTS_PER_VALUE} elements in the value at offset {offset}"
                ));
            }
            child += element(&input[child..end], offset + child, depth + 1)?;
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_der() {
        assert_eq!(check(&[0x30, 0x03, 0x02, 0x01, 0x05]), Ok(()));
        assert_eq!(check(&[0x04, 0x00]), Ok(()));
    }

    #[test]
    fn rejects_malformed_or_oversized_shapes() {
        assert!(check(&[]).is_err());
        assert!(check(&[0x30]).is_err());
        assert!(
            check(&[0x30, 0x80, 0x00, 0x00]).is_err(),
            "indefinite length"
        );
        assert!(
            check(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(),
            "non-minimal"
        );
        assert!(
            check(&[0x30, 0x05, 0x02, 0x01, 0x05]).is_err(),
            "runs past the end"
        );
        assert!(check(&[0x02, 0x01, 0x05, 0x00]).is_err(), "trailing bytes");
        let mut many = vec![0x31, 0x82, 0x02, 0x02];
        many.extend(std::iter::repeat_n([0x05u8, 0x00], 257).flatten());
        many[2..4].copy_from_slice(&(514u16).to_be_bytes());
        assert!(check(&many).unwrap_err().contains("more than 256"));
        let mut deep = Vec::new();
        for level in 0..40usize {
            let remaining = 2 * (40 - level - 1);
            deep.extend([0x30, remaining as u8]);
        }
        assert!(check(&deep).unwrap_err().contains("nesting"));
    }
}
