//! Decompression and compression of a batch's record bytes for Kafka's four codecs.
//!
//! Snappy comes in two framings: raw snappy, and the xerial framing the Java client (and
//! librdkafka, for compatibility) writes. Both are read; raw is written.
//!
//! Decompression is bounded: a batch whose records would expand past `max_bytes` is refused, so
//! a small compressed batch cannot make the broker allocate without limit.

use std::io::{Read, Write};

use crate::batch::Compression;
use crate::error::InvalidRecordReason;

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// Decompresses `input` compressed with `codec`, refusing output larger than `max_bytes`.
///
/// # Errors
/// `MalformedRecords` if the bytes do not decompress or expand past the bound.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, InvalidRecordReason> {
    let bad = |_| InvalidRecordReason::MalformedRecords;
    let out = match codec {
        Compression::None => input.to_vec(),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(input), max_bytes)?,
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), max_bytes)?,
        Compression::Zstd => read_bounded(
            zstd::stream::read::Decoder::new(input).map_err(bad)?,
            max_bytes,
        )?,
        Compression::Snappy => snappy_decompress(input, max_bytes)?,
    };
    if out.len() > max_bytes {
        return Err(InvalidRecordReason::MalformedRecords);
    }
    Ok(out)
}

fn read_bounded(reader: impl Read, max_bytes: usize) -> Result<Vec<u8>, InvalidRecordReason> {
    let mut out = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let _read = reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| InvalidRecordReason::MalformedRecords)?;
    if out.len() > max_bytes {
        return Err(InvalidRecordReason::MalformedRecords);
    }
    Ok(out)
}

fn snappy_decompress(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, InvalidRecordReason> {
    let bad = |_| InvalidRecordReason::MalformedRecords;
    if !input.starts_with(XERIAL_MAGIC) {
        let len = snap::raw::decompress_len(input).map_err(bad)?;
        if len > max_bytes {
            return Err(InvalidRecordReason::MalformedRecords);
        }
        return snap::raw::Decoder::new().decompress_vec(input).map_err(bad);
    }
    // Xerial: 16-byte header, then blocks of [i32 compressed length][raw snappy block].
    let mut rest = input
        .get(XERIAL_HEADER_BYTES..)
        .ok_or(InvalidRecordReason::MalformedRecords)?;
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(InvalidRecordReason::MalformedRecords)?;
        let len = usize::try_from(i32::from_be_bytes(len_bytes))
            .map_err(|_| InvalidRecordReason::MalformedRecords)?;
        let block = rest
            .get(4..4 + len)
            .ok_or(InvalidRecordReason::MalformedRecords)?;
        let block_len = snap::raw::decompress_len(block).map_err(bad)?;
        if out.len() + block_len > max_bytes {
            return Err(InvalidRecordReason::MalformedRecords);
        }
        out.extend_from_slice(&decoder.decompress_vec(block).map_err(bad)?);
        rest = rest.get(4 + len..).unwrap_or_default();
    }
    Ok(out)
}

/// Compresses `input` with `codec`.
#[must_use]
pub fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => input.to_vec(),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(input);
            encoder.finish().unwrap_or_default()
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(input)
            .unwrap_or_default(),
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            let _ = encoder.write_all(input);
            encoder.finish().unwrap_or_default()
        }
        Compression::Zstd => zstd::bulk::compress(input, 3).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_respects_the_bound() {
        let input: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &input);
            assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input);
            assert_eq!(
                decompress(codec, &packed, input.len() - 1),
                Err(InvalidRecordReason::MalformedRecords),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn reads_xerial_framed_snappy() {
        let input = b"hello xerial hello xerial hello".repeat(10);
        let block = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&i32::try_from(block.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&block);
        assert_eq!(
            decompress(Compression::Snappy, &framed, 1 << 20).unwrap(),
            input
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(decompress(codec, b"\x82SNAPPY\x00garbage-garbage", 1 << 20).is_err());
            assert!(decompress(codec, &[0xff; 64], 1 << 20).is_err());
        }
    }
}
