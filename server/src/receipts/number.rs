//! The receipt number (回执号 / 图像号) that the window asks for: 11 random characters and a
//! check character, over Crockford's base-32 alphabet (no I, L, O or U, so nothing reads as
//! something else). The check character is Luhn mod 32: every single mistyped character and
//! almost every swap of two neighbours is caught at the window instead of finding another
//! person's receipt, or none.

use std::fmt;

use rand::Rng;

use crate::error::{ErrorCode, FieldError};
use serde::{Deserialize, Serialize};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PAYLOAD_LEN: usize = 11;
pub const LEN: usize = PAYLOAD_LEN + 1;

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReceiptNo(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptNoError {
    #[error("回执号应为12位数字或字母")]
    Malformed,
    #[error("回执号校验位不符，请核对是否输错")]
    CheckFailed,
}

impl FieldError for ReceiptNoError {
    fn code(&self) -> ErrorCode {
        match self {
            ReceiptNoError::Malformed => ErrorCode::ReceiptNoMalformed,
            ReceiptNoError::CheckFailed => ErrorCode::ReceiptNoCheckFailed,
        }
    }
}

/// The value of a character typed at the window; Crockford's reading of look-alikes.
fn value(c: char) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == c)
        .map(|v| v as u32)
}

/// Luhn mod N over values read right to left; `double_first` is true when computing a check
/// character (the rightmost payload value is doubled), false when validating a whole number.
fn luhn_sum(values: impl DoubleEndedIterator<Item = u32>, double_first: bool) -> u32 {
    let n = ALPHABET.len() as u32;
    values
        .rev()
        .enumerate()
        .map(|(i, v)| {
            let doubled = (i % 2 == 0) == double_first;
            let addend = if doubled { v * 2 } else { v };
            addend / n + addend % n
        })
        .sum::<u32>()
        % n
}

impl ReceiptNo {
    /// A new random number; the store refuses a duplicate and the caller draws again.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let payload: Vec<u32> = (0..PAYLOAD_LEN).map(|_| rng.random_range(0..32)).collect();
        let check = (32 - luhn_sum(payload.iter().copied(), true)) % 32;
        let text = payload
            .iter()
            .chain(std::iter::once(&check))
            .map(|&v| char::from(ALPHABET[v as usize]))
            .collect();
        ReceiptNo(text)
    }

    /// Reads a number as typed: case, spaces, hyphens and look-alike letters do not matter.
    pub fn parse(input: &str) -> Result<Self, ReceiptNoError> {
        let values = input
            .chars()
            .filter(|&c| !c.is_whitespace() && c != '-')
            .map(value)
            .collect::<Option<Vec<u32>>>()
            .ok_or(ReceiptNoError::Malformed)?;
        if values.len() != LEN {
            return Err(ReceiptNoError::Malformed);
        }
        if luhn_sum(values.iter().copied(), false) != 0 {
            return Err(ReceiptNoError::CheckFailed);
        }
        Ok(ReceiptNo(
            values
                .iter()
                .map(|&v| char::from(ALPHABET[v as usize]))
                .collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `K3M9 Q2XH T7R4`: easier to read out at the window.
    pub fn grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl TryFrom<String> for ReceiptNo {
    type Error = ReceiptNoError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ReceiptNo::parse(&value)
    }
}

impl From<ReceiptNo> for String {
    fn from(value: ReceiptNo) -> Self {
        value.0
    }
}

impl fmt::Display for ReceiptNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ReceiptNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptNo({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(count: usize) -> Vec<ReceiptNo> {
        let mut rng = rand::rng();
        (0..count).map(|_| ReceiptNo::generate(&mut rng)).collect()
    }

    #[test]
    fn generated_numbers_parse_back() {
        for no in numbers(500) {
            assert_eq!(no.as_str().len(), LEN);
            assert_eq!(ReceiptNo::parse(no.as_str()), Ok(no.clone()));
            assert_eq!(
                ReceiptNo::parse(&no.grouped().to_lowercase()),
                Ok(no.clone())
            );
        }
    }

    #[test]
    fn every_single_substitution_is_caught() {
        for no in numbers(50) {
            for position in 0..LEN {
                for &replacement in ALPHABET {
                    let mut typed = no.as_str().as_bytes().to_vec();
                    if typed[position] == replacement {
                        continue;
                    }
                    typed[position] = replacement;
                    let typed = String::from_utf8(typed).unwrap();
                    assert_eq!(
                        ReceiptNo::parse(&typed),
                        Err(ReceiptNoError::CheckFailed),
                        "{no} typed as {typed}"
                    );
                }
            }
        }
    }

    #[test]
    fn most_neighbour_swaps_are_caught() {
        let (mut swaps, mut caught) = (0, 0);
        for no in numbers(200) {
            let bytes = no.as_str().as_bytes();
            for i in 0..LEN - 1 {
                if bytes[i] == bytes[i + 1] {
                    continue;
                }
                let mut typed = bytes.to_vec();
                typed.swap(i, i + 1);
                swaps += 1;
                if ReceiptNo::parse(std::str::from_utf8(&typed).unwrap()).is_err() {
                    caught += 1;
                }
            }
        }
        // Luhn mod 32 misses only swaps of the pair of values 0 and 31.
        assert!(caught * 100 >= swaps * 99, "{caught} of {swaps}");
    }

    #[test]
    fn look_alikes_read_as_the_alphabet_and_junk_is_malformed() {
        let no = numbers(1).remove(0);
        let typed = no.as_str().replace('0', "o").replace('1', "l");
        assert_eq!(ReceiptNo::parse(&typed), Ok(no));
        assert_eq!(ReceiptNo::parse("ABC"), Err(ReceiptNoError::Malformed));
        assert_eq!(
            ReceiptNo::parse("UUUUUUUUUUUU"),
            Err(ReceiptNoError::Malformed)
        );
        assert_eq!(ReceiptNo::parse("回执号"), Err(ReceiptNoError::Malformed));
        assert_eq!(ReceiptNo::parse(""), Err(ReceiptNoError::Malformed));
    }
}
