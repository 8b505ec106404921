//! SHA-256 of many independent messages at once.
//!
//! A monitor re-verifying a log computes two SHA-256 compressions for each short leaf and two for
//! each interior node, and nothing else costs as much. One compression is a chain of 32
//! `sha256rnds2` instructions, each waiting for the one before, so a core hashing one message at
//! a time spends most of its cycles waiting. The SHA extensions' latency leaves room for more:
//! here [`LANES`] messages are compressed side by side, their rounds interleaved, which on the
//! 2-core machine of Cairn's benchmarks more than doubles the hashes a core computes
//! (`cargo bench -p cairn-spec --bench merkle -- hash/`: 8.6 M node hashes/s one at a time,
//! 20.7 M side by side; `benchmarks/history.md`, "SHA-256 side by side"). The messages may have
//! any lengths: a lane that finishes takes the next message.
//!
//! Results are bit-for-bit those of the `sha2` crate, which is used where the SHA extensions
//! are missing and by the tests as the reference.
//!
//! This is the only module of the crate with `unsafe` code, and it has two `unsafe` blocks: the
//! calls into the functions compiled for the SHA extensions, made only once the processor is
//! known to have them. Everything inside those functions is safe code (no pointers: words are
//! loaded and stored through byte arrays).

#![allow(unsafe_code)]

use sha2::{Digest, Sha256};

use super::Hash;

/// How many messages are compressed side by side: four hide the instruction's latency on the
/// measured machine; eight are no faster (too few registers).
pub const LANES: usize = 4;

/// `out[i] = SHA-256(prefix || message(i))` for every `i` of `out`.
pub fn prefixed<'a>(prefix: u8, message: impl Fn(usize) -> &'a [u8], out: &mut [Hash]) {
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        // SAFETY: the processor has the SHA extensions, SSSE3 and SSE4.1 (checked just above).
        unsafe { shani::prefixed(prefix, &message, out) };
        return;
    }
    portable(prefix, message, out);
}

/// `out[i] = SHA-256(0x01 || pairs[2i] || pairs[2i + 1])`: the interior nodes above a level of a
/// tree, for `out.len()` pairs.
///
/// # Panics
/// If `pairs` holds fewer than `2 * out.len()` hashes.
pub fn nodes(pairs: &[Hash], out: &mut [Hash]) {
    assert!(pairs.len() >= 2 * out.len(), "two children a node");
    #[cfg(target_arch = "x86_64")]
    if shani::available() {
        // SAFETY: as in `prefixed`.
        unsafe { shani::nodes(pairs, out) };
        return;
    }
    for (node, children) in out.iter_mut().zip(pairs.chunks_exact(2)) {
        *node = Hash::of_node(&children[0], &children[1]);
    }
}

/// [`prefixed`] one message at a time with the `sha2` crate: the fallback, and the reference
/// the tests compare with.
pub fn portable<'a>(prefix: u8, message: impl Fn(usize) -> &'a [u8], out: &mut [Hash]) {
    for (position, hash) in out.iter_mut().enumerate() {
        let mut hasher = Sha256::new();
        hasher.update([prefix]);
        hasher.update(message(position));
        hash.0 = hasher.finalize().into();
    }
}

// The SHA-256 constants and padding below serve the SHA-extension code only: elsewhere (the
// browser's wasm verifier) `portable` hashes with the `sha2` crate.

/// The SHA-256 initial state (FIPS 180-4 §5.3.3).
#[cfg(target_arch = "x86_64")]
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The round constants (FIPS 180-4 §4.2.2).
#[cfg(target_arch = "x86_64")]
const ROUND_CONSTANTS: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// How many 64-byte blocks SHA-256 compresses for a message of `len` bytes after the prefix:
/// the prefix, the message, the 0x80 byte and the 8-byte length, rounded up.
#[cfg(target_arch = "x86_64")]
fn block_count(len: usize) -> usize {
    (1 + len + 8) / 64 + 1
}

/// Block `block` (of `blocks`) of the padded message `prefix || message` (FIPS 180-4 §5.1.1).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fill_block(prefix: u8, message: &[u8], block: usize, blocks: usize, out: &mut [u8; 64]) {
    let start = 64 * block;
    let total = 1 + message.len();
    if start + 64 <= total {
        if start == 0 {
            out[0] = prefix;
            out[1..].copy_from_slice(&message[..63]);
        } else {
            out.copy_from_slice(&message[start - 1..start + 63]);
        }
        return;
    }
    *out = [0; 64];
    if start < total {
        let (at, from) = if start == 0 {
            out[0] = prefix;
            (1, 0)
        } else {
            (0, start - 1)
        };
        let rest = &message[from..];
        out[at..at + rest.len()].copy_from_slice(rest);
        out[total - start] = 0x80;
    } else if start == total {
        out[0] = 0x80;
    }
    if block + 1 == blocks {
        // The length in bits; a slice's length times 8 fits in 64 bits.
        out[56..].copy_from_slice(&((total as u64) << 3).to_be_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_extract_epi64, _mm_set_epi32,
        _mm_set_epi64x, _mm_setzero_si128, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32,
        _mm_sha256rnds2_epu32, _mm_shuffle_epi32, _mm_shuffle_epi8,
    };

    use super::{block_count, fill_block, Hash, INITIAL, LANES, ROUND_CONSTANTS};
    use crate::hash::HASH_SIZE;

    /// Whether this processor has what the functions below are compiled for (the answer is
    /// cached by the standard library).
    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }

    /// A lane's chaining value in the order `sha256rnds2` wants: (A, B, E, F) and (C, D, G, H).
    #[derive(Clone, Copy)]
    struct State {
        abef: __m128i,
        cdgh: __m128i,
    }

    /// Sixteen bytes as a vector, in memory order.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn load(bytes: &[u8; 16]) -> __m128i {
        let half = |range: core::ops::Range<usize>| {
            i64::from_le_bytes(bytes[range].try_into().expect("eight bytes"))
        };
        _mm_set_epi64x(half(8..16), half(0..8))
    }

    /// A vector as sixteen bytes, in memory order.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn store(vector: __m128i, bytes: &mut [u8]) {
        bytes[..8].copy_from_slice(&_mm_extract_epi64::<0>(vector).to_le_bytes());
        bytes[8..16].copy_from_slice(&_mm_extract_epi64::<1>(vector).to_le_bytes());
    }

    /// Swaps the bytes of each 32-bit word: SHA-256 words are big-endian.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn byte_swap_mask() -> __m128i {
        _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203)
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn initial() -> State {
        let word = |index: usize| INITIAL[index].cast_signed();
        let dcba = _mm_set_epi32(word(3), word(2), word(1), word(0));
        let hgfe = _mm_set_epi32(word(7), word(6), word(5), word(4));
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        State {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
        }
    }

    /// Writes the digest of a finished lane.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn finish(state: State, out: &mut Hash) {
        let feba = _mm_shuffle_epi32(state.abef, 0x1B);
        let dchg = _mm_shuffle_epi32(state.cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let bytes: &mut [u8; HASH_SIZE] = &mut out.0;
        store(_mm_shuffle_epi8(dcba, byte_swap_mask()), &mut bytes[..16]);
        store(_mm_shuffle_epi8(hgef, byte_swap_mask()), &mut bytes[16..]);
    }

    /// One compression of each lane's state with that lane's block, the lanes' rounds
    /// interleaved so that one lane's round runs while another's waits.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn compress<const N: usize>(states: &mut [State; N], blocks: &[[u8; 64]; N]) {
        let saved = *states;
        let mut schedule = [[_mm_setzero_si128(); 4]; N];
        for (words, block) in schedule.iter_mut().zip(blocks) {
            for (word, bytes) in words.iter_mut().zip(block.chunks_exact(16)) {
                let bytes = bytes.try_into().expect("sixteen bytes");
                *word = _mm_shuffle_epi8(load(bytes), byte_swap_mask());
            }
        }
        for quad in 0..16 {
            let k = _mm_set_epi32(
                ROUND_CONSTANTS[4 * quad + 3].cast_signed(),
                ROUND_CONSTANTS[4 * quad + 2].cast_signed(),
                ROUND_CONSTANTS[4 * quad + 1].cast_signed(),
                ROUND_CONSTANTS[4 * quad].cast_signed(),
            );
            for (state, words) in states.iter_mut().zip(schedule.iter_mut()) {
                let w = if quad < 4 {
                    words[quad]
                } else {
                    // W[t..t+4] from the sixteen before (FIPS 180-4 §6.2.2 step 1).
                    let partial = _mm_sha256msg1_epu32(words[quad % 4], words[(quad + 1) % 4]);
                    let shifted = _mm_alignr_epi8(words[(quad + 3) % 4], words[(quad + 2) % 4], 4);
                    let next = _mm_sha256msg2_epu32(
                        _mm_add_epi32(partial, shifted),
                        words[(quad + 3) % 4],
                    );
                    words[quad % 4] = next;
                    next
                };
                let wk = _mm_add_epi32(w, k);
                state.cdgh = _mm_sha256rnds2_epu32(state.cdgh, state.abef, wk);
                state.abef =
                    _mm_sha256rnds2_epu32(state.abef, state.cdgh, _mm_shuffle_epi32(wk, 0x0E));
            }
        }
        for (state, saved) in states.iter_mut().zip(saved) {
            state.abef = _mm_add_epi32(state.abef, saved.abef);
            state.cdgh = _mm_add_epi32(state.cdgh, saved.cdgh);
        }
    }

    /// The message a lane is hashing.
    struct Lane<'a> {
        message: &'a [u8],
        position: usize,
        block: usize,
        blocks: usize,
    }

    /// [`super::prefixed`] on [`LANES`] lanes: each step compresses one block of each lane's
    /// message; a lane whose message is done writes its hash and takes the next message.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub fn prefixed<'a>(prefix: u8, message: &impl Fn(usize) -> &'a [u8], out: &mut [Hash]) {
        let mut next = 0;
        let mut lanes: [Option<Lane<'a>>; LANES] = [const { None }; LANES];
        let mut states = [initial(); LANES];
        let mut blocks = [[0u8; 64]; LANES];
        loop {
            let mut active = 0;
            for ((lane, state), block) in lanes.iter_mut().zip(&mut states).zip(&mut blocks) {
                if lane.is_none() && next < out.len() {
                    let bytes = message(next);
                    *lane = Some(Lane {
                        message: bytes,
                        position: next,
                        block: 0,
                        blocks: block_count(bytes.len()),
                    });
                    *state = initial();
                    next += 1;
                }
                if let Some(lane) = lane {
                    fill_block(prefix, lane.message, lane.block, lane.blocks, block);
                    active += 1;
                }
            }
            if active == 0 {
                return;
            }
            // An idle lane compresses whatever its block holds; its state is never read.
            compress(&mut states, &blocks);
            for (slot, state) in lanes.iter_mut().zip(&states) {
                if let Some(lane) = slot {
                    lane.block += 1;
                    if lane.block == lane.blocks {
                        finish(*state, &mut out[lane.position]);
                        *slot = None;
                    }
                }
            }
        }
    }

    /// [`super::nodes`] on [`LANES`] lanes: each node is exactly two blocks, `0x01 || left ||
    /// right[..31]` then `right[31]`, the padding and the length (65 bytes, 520 bits).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub fn nodes(pairs: &[Hash], out: &mut [Hash]) {
        let mut second = [0u8; 64];
        second[1] = 0x80;
        second[56..].copy_from_slice(&520u64.to_be_bytes());
        let mut firsts = [[0u8; 64]; LANES];
        let mut seconds = [second; LANES];
        let whole = out.len() - out.len() % LANES;
        let mut groups = out.chunks_exact_mut(LANES);
        let mut pairs_left = pairs.chunks_exact(2 * LANES);
        for (group, children) in (&mut groups).zip(&mut pairs_left) {
            for (lane, pair) in children.chunks_exact(2).enumerate() {
                firsts[lane][0] = 0x01;
                firsts[lane][1..33].copy_from_slice(&pair[0].0);
                firsts[lane][33..].copy_from_slice(&pair[1].0[..31]);
                seconds[lane][0] = pair[1].0[31];
            }
            let mut states = [initial(); LANES];
            compress(&mut states, &firsts);
            compress(&mut states, &seconds);
            for (node, state) in group.iter_mut().zip(states) {
                finish(state, node);
            }
        }
        let rest = groups.into_remainder();
        let offset = 2 * whole;
        for (position, node) in rest.iter_mut().enumerate() {
            let left = &pairs[offset + 2 * position];
            let right = &pairs[offset + 2 * position + 1];
            *node = Hash::of_node(left, right);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reference(prefix: u8, message: &[u8]) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update([prefix]);
        hasher.update(message);
        Hash(hasher.finalize().into())
    }

    #[test]
    fn every_length_across_the_block_boundaries_hashes_as_sha2_does() {
        // Lengths 0..=200 cross the one-, two-, three- and four-block boundaries (55/56, 119/120,
        // 183/184 bytes after the prefix), each next to messages of other lengths.
        let messages: Vec<Vec<u8>> = (0..=200u8)
            .map(|len| (0..len).map(|byte| byte.wrapping_mul(31) ^ len).collect())
            .collect();
        for prefix in [0x00, 0x01, 0xff] {
            let mut hashes = vec![Hash::default(); messages.len()];
            prefixed(prefix, |position| &messages[position], &mut hashes);
            for (message, hash) in messages.iter().zip(&hashes) {
                assert_eq!(
                    *hash,
                    reference(prefix, message),
                    "length {}",
                    message.len()
                );
            }
        }
    }

    #[test]
    fn known_answers() {
        // SHA-256("") and SHA-256("abc") (FIPS 180-4 examples), as a prefix with nothing after.
        let mut hashes = [Hash::default(); 1];
        prefixed(b'a', |_| b"bc", &mut hashes);
        assert_eq!(
            hashes[0].to_string(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        // The empty tree's leaf: SHA-256(0x00), RFC 6962 test vectors.
        prefixed(0x00, |_| b"", &mut hashes);
        assert_eq!(hashes[0], Hash::of_leaf(b""));
    }

    #[test]
    fn nodes_hash_as_of_node_for_every_count() {
        let level: Vec<Hash> = (0..40u32)
            .map(|n| Hash::of_leaf(&n.to_be_bytes()))
            .collect();
        for count in 0..=20 {
            let mut parents = vec![Hash::default(); count];
            nodes(&level, &mut parents);
            for (position, parent) in parents.iter().enumerate() {
                let expected = Hash::of_node(&level[2 * position], &level[2 * position + 1]);
                assert_eq!(*parent, expected, "count {count} node {position}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_messages_hash_as_sha2_does(
            prefix: u8,
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..400), 0..24),
        ) {
            let mut hashes = vec![Hash::default(); messages.len()];
            prefixed(prefix, |position| &messages[position], &mut hashes);
            let mut expected = vec![Hash::default(); messages.len()];
            portable(prefix, |position| &messages[position], &mut expected);
            prop_assert_eq!(hashes, expected);
        }
    }
}
