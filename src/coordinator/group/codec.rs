//! Kafka's primitive encodings for the records of `__consumer_offsets`: big-endian integers,
//! `int16`-length strings and `int32`-length bytes for the classic (non-flexible) schemas, and
//! the compact (unsigned-varint length + 1) forms with tagged fields for the flexible ones.
//!
//! Hand-written rather than generated because the kafka-protocol crate carries the request and
//! response messages only, not the coordinator record schemas; these few primitives are all the
//! schemas need. Every read is bounds-checked and returns [`CodecError`]: the bytes come from a
//! log that a crash or a bug may have damaged, and loading must reject, not panic.

use bytes::{BufMut, Bytes, BytesMut};

/// A record that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed coordinator record: {0}")]
pub struct CodecError(pub &'static str);

/// Writes Kafka primitives into a growing buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Writer {
        Writer::default()
    }

    /// The bytes written.
    #[must_use]
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// `int8`.
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.put_i8(v);
        self
    }

    /// `int16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.put_i16(v);
        self
    }

    /// `int32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(v);
        self
    }

    /// `int64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.put_i64(v);
        self
    }

    /// `uuid`.
    pub fn uuid(&mut self, v: uuid::Uuid) -> &mut Self {
        self.buf.put_slice(v.as_bytes());
        self
    }

    /// `string`: `int16` length then UTF-8. Longer strings are cut at the limit (callers bound
    /// every string they persist well below it).
    pub fn string(&mut self, v: &str) -> &mut Self {
        let bytes = &v.as_bytes()[..v.len().min(i16::MAX as usize)];
        self.buf.put_i16(len_i16(bytes.len()));
        self.buf.put_slice(bytes);
        self
    }

    /// `nullable_string`: length -1 for null.
    pub fn nullable_string(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.string(s),
            None => {
                self.buf.put_i16(-1);
                self
            }
        }
    }

    /// `bytes`: `int32` length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
        self.buf.put_slice(v);
        self
    }

    /// An `int32` array length.
    pub fn array_len(&mut self, len: usize) -> &mut Self {
        self.buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
        self
    }

    /// `unsigned_varint`.
    pub fn uvarint(&mut self, mut v: u32) -> &mut Self {
        while v >= 0x80 {
            // Truncation is the encoding: the low seven bits, with the continuation bit.
            self.buf.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
        self
    }

    /// `compact_string`: length + 1 as an unsigned varint, then UTF-8.
    pub fn compact_string(&mut self, v: &str) -> &mut Self {
        self.compact_len(v.len());
        self.buf.put_slice(v.as_bytes());
        self
    }

    /// `compact_nullable_string`: 0 for null.
    pub fn compact_nullable_string(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.compact_string(s),
            None => self.uvarint(0),
        }
    }

    /// `compact_bytes`.
    pub fn compact_bytes(&mut self, v: &[u8]) -> &mut Self {
        self.compact_len(v.len());
        self.buf.put_slice(v);
        self
    }

    /// A compact array length (length + 1).
    pub fn compact_len(&mut self, len: usize) -> &mut Self {
        self.uvarint(u32::try_from(len).unwrap_or(u32::MAX - 1) + 1)
    }

    /// An empty tagged-field section.
    pub fn no_tagged_fields(&mut self) -> &mut Self {
        self.uvarint(0)
    }
}

fn len_i16(len: usize) -> i16 {
    i16::try_from(len).unwrap_or(i16::MAX)
}

/// Reads Kafka primitives from a slice, bounds-checked.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// `int8`.
    ///
    /// # Errors
    /// Truncated input.
    pub fn i8(&mut self) -> Result<i8, CodecError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    /// `int16`.
    ///
    /// # Errors
    /// Truncated input.
    pub fn i16(&mut self) -> Result<i16, CodecError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// `int32`.
    ///
    /// # Errors
    /// Truncated input.
    pub fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// `int64`.
    ///
    /// # Errors
    /// Truncated input.
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// `uuid`.
    ///
    /// # Errors
    /// Truncated input.
    pub fn uuid(&mut self) -> Result<uuid::Uuid, CodecError> {
        Ok(uuid::Uuid::from_bytes(self.array()?))
    }

    /// `string`.
    ///
    /// # Errors
    /// Truncated input, a negative length, invalid UTF-8.
    pub fn string(&mut self) -> Result<String, CodecError> {
        self.nullable_string()?
            .ok_or(CodecError("null where a string is required"))
    }

    /// `nullable_string`.
    ///
    /// # Errors
    /// Truncated input, invalid UTF-8.
    pub fn nullable_string(&mut self) -> Result<Option<String>, CodecError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.utf8(usize::try_from(len).unwrap_or(0)).map(Some)
    }

    /// `bytes`.
    ///
    /// # Errors
    /// Truncated input, a negative length.
    pub fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let len = usize::try_from(self.i32()?).map_err(|_| CodecError("negative length"))?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    /// An `int32` array length; -1 (null) reads as 0. Bounded by the bytes left, so a damaged
    /// length cannot make the caller pre-allocate a huge vector.
    ///
    /// # Errors
    /// Truncated input, a length larger than the bytes left.
    pub fn array_len(&mut self) -> Result<usize, CodecError> {
        let len = self.i32()?;
        self.bounded(usize::try_from(len).unwrap_or(0))
    }

    /// `unsigned_varint`.
    ///
    /// # Errors
    /// Truncated input or more than five bytes.
    pub fn uvarint(&mut self) -> Result<u32, CodecError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.array::<1>()?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError("varint too long"))
    }

    /// A compact length: `None` for null (0), else length.
    ///
    /// # Errors
    /// Truncated input, a length larger than the bytes left.
    pub fn compact_len(&mut self) -> Result<Option<usize>, CodecError> {
        match self.uvarint()? {
            0 => Ok(None),
            n => self.bounded((n - 1) as usize).map(Some),
        }
    }

    /// `compact_string`.
    ///
    /// # Errors
    /// Truncated input, null, invalid UTF-8.
    pub fn compact_string(&mut self) -> Result<String, CodecError> {
        self.compact_nullable_string()?
            .ok_or(CodecError("null where a string is required"))
    }

    /// `compact_nullable_string`.
    ///
    /// # Errors
    /// Truncated input, invalid UTF-8.
    pub fn compact_nullable_string(&mut self) -> Result<Option<String>, CodecError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(len) => self.utf8(len).map(Some),
        }
    }

    /// `compact_bytes`.
    ///
    /// # Errors
    /// Truncated input, null.
    pub fn compact_bytes(&mut self) -> Result<Bytes, CodecError> {
        let len = self.compact_len()?.ok_or(CodecError("null bytes"))?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    /// A compact array length; null reads as 0.
    ///
    /// # Errors
    /// Truncated input, a length larger than the bytes left.
    pub fn compact_array_len(&mut self) -> Result<usize, CodecError> {
        Ok(self.compact_len()?.unwrap_or(0))
    }

    /// Skips a tagged-field section (unknown tags are allowed by the schema rules).
    ///
    /// # Errors
    /// Truncated input.
    pub fn skip_tagged_fields(&mut self) -> Result<(), CodecError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    fn bounded(&self, len: usize) -> Result<usize, CodecError> {
        if len > self.buf.len() {
            return Err(CodecError("length past the end"));
        }
        Ok(len)
    }

    fn utf8(&mut self, len: usize) -> Result<String, CodecError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError("invalid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.i8(-3)
            .i16(7)
            .i32(-9)
            .i64(1 << 40)
            .string("group")
            .nullable_string(None)
            .bytes(b"xyz")
            .uvarint(300)
            .compact_string("topic")
            .compact_nullable_string(None)
            .compact_bytes(b"ab")
            .no_tagged_fields();
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.i8().unwrap(), -3);
        assert_eq!(r.i16().unwrap(), 7);
        assert_eq!(r.i32().unwrap(), -9);
        assert_eq!(r.i64().unwrap(), 1 << 40);
        assert_eq!(r.string().unwrap(), "group");
        assert_eq!(r.nullable_string().unwrap(), None);
        assert_eq!(&r.bytes().unwrap()[..], b"xyz");
        assert_eq!(r.uvarint().unwrap(), 300);
        assert_eq!(r.compact_string().unwrap(), "topic");
        assert_eq!(r.compact_nullable_string().unwrap(), None);
        assert_eq!(&r.compact_bytes().unwrap()[..], b"ab");
        r.skip_tagged_fields().unwrap();
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0, 5, b'a']).string().is_err());
        assert!(Reader::new(&[0x7f, 0xff, 0xff, 0xff]).array_len().is_err());
        assert!(Reader::new(&[0xff; 6]).uvarint().is_err());
        assert!(Reader::new(&[0, 1, 0xff]).string().is_err());
    }
}
