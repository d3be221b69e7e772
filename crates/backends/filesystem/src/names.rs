//! Blob names as file names. Linux caps a file name at 255 bytes, while a
//! valid blob name is up to 100 characters of up to 4 bytes each. A name
//! that fits is its own file name; a longer one is stored under a byte
//! string that is never UTF-8 (byte `0xFF` first, then the name's
//! characters as one number written in base 254 with every byte but NUL
//! and `/`), which holds any valid name in at most 253 bytes and decodes
//! back to it exactly: listing shows the real name, and no sidecar file is
//! needed.

use infinisheet_blob_store::BlobName;
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The longest file name Linux file systems take.
const NAME_MAX: usize = 255;
/// Marks an encoded name: never a byte of UTF-8 text.
const MARK: u8 = 0xFF;
/// Unicode scalar values (code points less the surrogates): the base of a
/// name's characters as digits (bijective: digits run from 1 to BASE).
const BASE: u32 = 0x11_0000 - 0x800;
/// Bytes a file name may hold besides NUL and `/`.
const BYTES: u32 = 254;

/// A number as little-endian 32-bit limbs.
#[derive(Default)]
struct Big(Vec<u32>);

impl Big {
    fn is_zero(&self) -> bool {
        self.0.iter().all(|limb| *limb == 0)
    }

    /// `self * by + add`.
    fn mul_add(&mut self, by: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let value = u64::from(*limb) * u64::from(by) + carry;
            *limb = value as u32;
            carry = value >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    /// Divides by `by`, returning the remainder.
    fn div_rem(&mut self, by: u32) -> u32 {
        let mut rest = 0u64;
        for limb in self.0.iter_mut().rev() {
            let value = (rest << 32) | u64::from(*limb);
            *limb = (value / u64::from(by)) as u32;
            rest = value % u64::from(by);
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        rest as u32
    }
}

fn digit_of(c: char) -> u32 {
    let code = c as u32;
    // Skip the surrogate gap; then 1-based.
    (if code >= 0xE000 { code - 0x800 } else { code }) + 1
}

fn char_of(digit: u32) -> Option<char> {
    let code = digit.checked_sub(1)?;
    char::from_u32(if code >= 0xD800 { code + 0x800 } else { code })
}

fn byte_of(digit: u32) -> u8 {
    // 0..254 onto 1..=255 without b'/'.
    let byte = digit as u8 + 1;
    if byte >= b'/' { byte + 1 } else { byte }
}

fn digit_of_byte(byte: u8) -> Option<u32> {
    match byte {
        0 | b'/' => None,
        b if b > b'/' => Some(u32::from(b) - 2),
        b => Some(u32::from(b) - 1),
    }
}

/// The file name of `name`.
pub(crate) fn on_disk(name: &BlobName) -> Cow<'_, OsStr> {
    let text = name.as_str();
    if text.len() <= NAME_MAX {
        return Cow::Borrowed(OsStr::new(text));
    }
    // The characters, last first, as a bijective base-BASE number.
    let mut number = Big::default();
    for c in text.chars().rev() {
        number.mul_add(BASE, digit_of(c));
    }
    let mut bytes = vec![MARK];
    while !number.is_zero() {
        bytes.push(byte_of(number.div_rem(BYTES)));
    }
    Cow::Owned(OsString::from_vec(bytes))
}

/// The blob name a file name stands for, if it stands for one.
pub(crate) fn from_disk(file: &OsStr) -> Option<BlobName> {
    let bytes = file.as_bytes();
    if let Ok(text) = std::str::from_utf8(bytes) {
        return BlobName::new(text).ok();
    }
    let digits = bytes.strip_prefix(&[MARK])?;
    if digits.is_empty() || digits.len() > NAME_MAX - 1 {
        return None;
    }
    let mut number = Big::default();
    for byte in digits.iter().rev() {
        number.mul_add(BYTES, digit_of_byte(*byte)?);
    }
    let mut text = String::new();
    while !number.is_zero() {
        // Bijective: digits 1..=BASE.
        let mut digit = number.div_rem(BASE);
        if digit == 0 {
            digit = BASE;
            // number -= 1 (it was a multiple of BASE, now divided).
            let mut i = 0;
            while let Some(limb) = number.0.get_mut(i) {
                if *limb > 0 {
                    *limb -= 1;
                    break;
                }
                *limb = u32::MAX;
                i += 1;
            }
            while number.0.last() == Some(&0) {
                number.0.pop();
            }
        }
        text.push(char_of(digit)?);
    }
    let name = BlobName::new(text).ok()?;
    // Only the encoding of a long name is one: a short name stored this
    // way would be a second file name for it.
    (name.as_str().len() > NAME_MAX).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let name = BlobName::new(text).unwrap();
        let disk = on_disk(&name);
        assert!(disk.as_bytes().len() <= NAME_MAX, "{} bytes", disk.len());
        assert_eq!(from_disk(&disk).unwrap(), name);
    }

    #[test]
    fn long_names_fit_and_come_back() {
        round_trip(&"\u{10FFFF}".repeat(100));
        round_trip(&"𝄞".repeat(100));
        round_trip(&"é".repeat(100));
        round_trip(&format!("{}a", "😀".repeat(99)));
        round_trip(&"\u{E000}\u{D7FF}".repeat(50));
        round_trip("short");
    }

    #[test]
    fn garbage_is_no_name() {
        assert!(from_disk(OsStr::from_bytes(&[MARK])).is_none());
        assert!(from_disk(OsStr::from_bytes(&[MARK, 0x01, 0x02])).is_none());
        assert!(from_disk(OsStr::from_bytes(&[0xFE, 0x41])).is_none());
    }
}
