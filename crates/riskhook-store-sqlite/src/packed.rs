//! How the two large values of a delivery are kept on disk: its body (`events.raw`) and its
//! assessment's explanation (`assessments.assessment`), each lz4-compressed when that makes it
//! smaller, with the column beside it (`raw_encoding`, `assessment_encoding`: migration 11)
//! saying which.
//!
//! Why: the two were ~2.6 and ~3.6 KB a delivery, a 4 KB page each, so every delivery wrote two
//! whole pages to the WAL and again at the checkpoint. Compressed, several rows share a page
//! (BENCHMARKS.md, "SQLite: bodies and assessments compressed"). PostgreSQL compresses the same
//! two values itself (TOAST with lz4, its migration 10), so only this store does it by hand.
//!
//! Compression happens on the request's task, before the job reaches the writer thread, whose
//! time is intake's serial limit; decompression on the reading side. A value reads back byte for
//! byte: the body is the evidence a signature was checked over.

use riskhook_store::StoreError;

/// Stored as given.
pub(crate) const PLAIN: i64 = 0;
/// An lz4 block after its length in bytes once decompressed, as 4 little-endian bytes.
pub(crate) const LZ4: i64 = 1;

/// No stored value unpacks larger than this: a corrupt length prefix is refused instead of
/// allocated. Far above any body intake accepts (`max_body_bytes`) or any assessment.
const MAX_UNPACKED: usize = 64 * 1024 * 1024;

/// Values smaller than this are kept plain: a row this small shares its page anyway.
const MIN_PACKED: usize = 128;

/// A value as it is written, with its encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) bytes: Vec<u8>,
    pub(crate) encoding: i64,
}

/// `value` compressed, or as it is when compression would not make it smaller.
pub(crate) fn pack(value: &[u8]) -> Packed {
    if value.len() >= MIN_PACKED && value.len() <= MAX_UNPACKED {
        let block = lz4_flex::block::compress(value);
        if block.len() + 4 < value.len() {
            let length = u32::try_from(value.len()).expect("bounded by MAX_UNPACKED");
            let mut bytes = Vec::with_capacity(block.len() + 4);
            bytes.extend_from_slice(&length.to_le_bytes());
            bytes.extend_from_slice(&block);
            return Packed {
                bytes,
                encoding: LZ4,
            };
        }
    }
    Packed {
        bytes: value.to_vec(),
        encoding: PLAIN,
    }
}

/// The value `stored` under `encoding` was packed from. Anything that is not a value
/// [`pack`] wrote is [`StoreError::Corrupt`], named after `column`.
pub(crate) fn unpack(stored: Vec<u8>, encoding: i64, column: &str) -> Result<Vec<u8>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("{column}: {why}"));
    match encoding {
        PLAIN => Ok(stored),
        LZ4 => {
            let (length, block) = stored
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("a compressed value shorter than its length"))?;
            let length = usize::try_from(u32::from_le_bytes(*length)).unwrap_or(usize::MAX);
            if length > MAX_UNPACKED {
                return Err(corrupt("a compressed value's length is out of range"));
            }
            let value = lz4_flex::block::decompress(block, length)
                .map_err(|e| corrupt(&format!("not an lz4 block ({e})")))?;
            if value.len() != length {
                return Err(corrupt(
                    "a compressed value of another length than recorded",
                ));
            }
            Ok(value)
        }
        other => Err(corrupt(&format!("unknown encoding {other}"))),
    }
}

/// [`unpack`] for a text column: the value must be UTF-8, as it was written.
pub(crate) fn unpack_text(
    stored: Vec<u8>,
    encoding: i64,
    column: &str,
) -> Result<String, StoreError> {
    String::from_utf8(unpack(stored, encoding, column)?)
        .map_err(|_| StoreError::Corrupt(format!("{column}: not UTF-8 once unpacked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(value: &[u8]) -> Packed {
        let packed = pack(value);
        assert_eq!(
            unpack(packed.bytes.clone(), packed.encoding, "t").expect("unpack"),
            value
        );
        packed
    }

    #[test]
    fn json_is_compressed_and_reads_back_byte_for_byte() {
        let body = include_bytes!("../../../fixtures/didit/status-updated-approved.json");
        let packed = roundtrip(body);
        assert_eq!(packed.encoding, LZ4);
        assert!(
            packed.bytes.len() < body.len() * 3 / 4,
            "{}",
            packed.bytes.len()
        );
    }

    #[test]
    fn small_and_incompressible_values_are_kept_plain() {
        let small = roundtrip(b"{\"a\":1}");
        assert_eq!(
            (small.encoding, small.bytes.as_slice()),
            (PLAIN, &b"{\"a\":1}"[..])
        );
        // Bytes with no repetition (xorshift): lz4 would only add its framing.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        assert_eq!(roundtrip(&noise).encoding, PLAIN);
        assert_eq!(roundtrip(b"").encoding, PLAIN);
    }

    #[test]
    fn anything_pack_did_not_write_is_corrupt_not_a_panic() {
        let good = pack(&[b'x'; 1000]);
        assert_eq!(good.encoding, LZ4);
        let mut wrong_length = good.bytes.clone();
        wrong_length[0] ^= 1;
        let mut huge_length = good.bytes.clone();
        huge_length[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let truncated = good.bytes[..good.bytes.len() - 3].to_vec();
        for (stored, encoding) in [
            (wrong_length, LZ4),
            (huge_length, LZ4),
            (truncated, LZ4),
            (vec![1, 2], LZ4),
            (vec![], LZ4),
            (vec![0, 0, 0, 0, 0xff], LZ4),
            (good.bytes, 7),
        ] {
            match unpack(stored.clone(), encoding, "events.raw") {
                Err(StoreError::Corrupt(why)) => assert!(why.starts_with("events.raw: "), "{why}"),
                other => panic!("{stored:?} under {encoding}: {other:?}"),
            }
        }
        match unpack_text(pack(&[0xff; 500]).bytes, LZ4, "a") {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("UTF-8"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
