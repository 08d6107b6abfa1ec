//! Little-endian cursors over a characteristic value. Every read names its field, so a short
//! value produces an error that says which field is missing.

use crate::error::{DecodeError, EncodeError};

/// A decoded value plus what the decoder noticed but tolerated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded<T> {
    pub value: T,
    /// Bytes after the last field the flags announce. Real devices append some; they are ignored.
    pub trailing: usize,
    /// Flag bits that the specification reserves, found set. They are ignored.
    pub reserved_flags: u32,
}

/// Reads fields in order from a characteristic value.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Total length announced by the flags, once known; reported in truncation errors.
    announced: Option<usize>,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            announced: None,
        }
    }

    /// Records the total length that the flags announce, for error messages.
    pub fn announce(&mut self, total: usize) {
        self.announced = Some(total);
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    #[inline(always)]
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.saturating_add(n);
        match self.bytes.get(self.pos..end) {
            Some(slice) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                field,
                needed: self.announced.map_or(end, |a| a.max(end)),
                present: self.bytes.len(),
            }),
        }
    }

    /// The next `N` bytes as an array, read in place: copying them to the stack first costs a
    /// store-forwarding stall when the fields are then loaded at other widths.
    #[inline(always)]
    pub fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let slice = self.take(field, N)?;
        // `take` returned exactly N bytes, so the conversion cannot fail.
        slice.try_into().map_err(|_| DecodeError::Truncated {
            field,
            needed: N,
            present: slice.len(),
        })
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(*self.array(field)?))
    }

    pub fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_le_bytes(*self.array(field)?))
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(*self.array(field)?))
    }

    pub fn u16_be(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(*self.array(field)?))
    }

    pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_le_bytes(*self.array(field)?))
    }

    pub fn u24(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let &[a, b, c] = self.array(field)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(*self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(*self.array(field)?))
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos = self.bytes.len();
        rest
    }

    /// Wraps up: the value plus the count of bytes nobody asked for.
    pub fn finish<T>(self, value: T, reserved_flags: u32) -> Decoded<T> {
        Decoded {
            value,
            trailing: self.remaining(),
            reserved_flags,
        }
    }
}

/// Writes fields in order into a caller-provided buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Fails early, before any byte is written, when `total` bytes will not fit.
    pub fn reserve(&self, total: usize) -> Result<(), EncodeError> {
        if total > self.buf.len() {
            return Err(EncodeError::BufferTooSmall {
                needed: total,
                available: self.buf.len(),
            });
        }
        Ok(())
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos + bytes.len();
        let available = self.buf.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
                Ok(())
            }
            None => Err(EncodeError::BufferTooSmall {
                needed: end,
                available,
            }),
        }
    }

    pub fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.bytes(&[v])
    }

    pub fn i8(&mut self, v: i8) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u16_be(&mut self, v: u16) -> Result<(), EncodeError> {
        self.bytes(&v.to_be_bytes())
    }

    pub fn i16(&mut self, v: i16) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u24(&mut self, v: u32) -> Result<(), EncodeError> {
        let [a, b, c, _] = v.to_le_bytes();
        self.bytes(&[a, b, c])
    }

    pub fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.bytes(&v.to_le_bytes())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// The bytes written so far (used by CRCs that cover the preceding fields).
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }
}
