//! The 18-digit 公民身份号码 of GB 11643-1999, and the keyed hash under which we store it.

use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::telemetry::mask;

/// ISO 7064 MOD 11-2 weights of the first 17 digits: 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for Σ mod 11 = 0..10.
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// GB/T 2260 province codes (first two digits).
const PROVINCES: [u32; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51,
    52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// A well-formed ID number: 18 characters, known province, real birth date not after
/// `today`, right check character. Its plain text is never logged or stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber {
    digits: String,
    birth_date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("应为18位，前17位为数字，最后一位为数字或X")]
    Format,
    #[error("地址码不正确")]
    Province,
    #[error("出生日期不正确")]
    BirthDate,
    #[error("出生日期不能晚于今天")]
    FutureBirthDate,
    #[error("校验位不正确，请核对号码")]
    CheckCharacter,
}

/// The check character of the first 17 digits (`None` unless they are 17 ASCII digits).
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(CHECK[(sum % 11) as usize])
}

impl IdNumber {
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let digits = input.trim().to_ascii_uppercase();
        let bytes = digits.as_bytes();
        let well_formed = bytes.len() == 18
            && bytes[..17].iter().all(u8::is_ascii_digit)
            && (bytes[17].is_ascii_digit() || bytes[17] == b'X');
        if !well_formed {
            return Err(IdNumberError::Format);
        }
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range].parse().expect("checked to be digits")
        };
        if !PROVINCES.contains(&number(0..2)) {
            return Err(IdNumberError::Province);
        }
        let birth_date = NaiveDate::from_ymd_opt(number(6..10) as i32, number(10..12), number(12..14))
            .filter(|d| d.year() >= 1900)
            .ok_or(IdNumberError::BirthDate)?;
        if birth_date > today {
            return Err(IdNumberError::FutureBirthDate);
        }
        if check_character(&digits[..17]) != Some(char::from(bytes[17])) {
            return Err(IdNumberError::CheckCharacter);
        }
        Ok(IdNumber { digits, birth_date })
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Full years (周岁) on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let born = self.birth_date;
        let mut age = date.year() - born.year();
        if (date.month(), date.day()) < (born.month(), born.day()) {
            age -= 1;
        }
        age.max(0) as u32
    }

    /// `4419**********123X`: what anyone but its owner (and every log) sees.
    pub fn masked(&self) -> String {
        mask::id_number(&self.digits)
    }
}

impl std::fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// HMAC-SHA256 of ID numbers under a server key: equal numbers match (one active appointment
/// per person, no-shows, bans, a receipt's owner) while a dump of the store reveals none.
#[derive(Clone)]
pub struct IdHasher {
    key: SecretString,
}

impl IdHasher {
    pub fn new(key: SecretString) -> Self {
        IdHasher { key }
    }

    pub fn hash(&self, id: &IdNumber) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(id.digits.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn published_examples_pass_the_check() {
        let parsed = IdNumber::parse("11010519491231002X", today()).unwrap();
        assert_eq!(
            parsed.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        // The standard's other example has the right check character but was born in 1880,
        // before any living applicant.
        assert_eq!(check_character("44052418800101001"), Some('4'));
        assert_eq!(
            IdNumber::parse("440524188001010014", today()).unwrap_err(),
            IdNumberError::BirthDate
        );
    }

    #[test]
    fn lower_case_x_and_spaces_are_accepted() {
        let id = IdNumber::parse(" 11010519491231002x ", today()).unwrap();
        assert_eq!(id.masked(), "1101**********002X");
        assert_eq!(format!("{id:?}"), "1101**********002X");
    }

    #[test]
    fn each_kind_of_bad_number_is_named() {
        let cases = [
            ("1101051949123100", IdNumberError::Format),
            ("11010519491231002Y", IdNumberError::Format),
            ("1101051949123100２X", IdNumberError::Format),
            ("99010519491231002X", IdNumberError::Province),
            ("110105194902300021", IdNumberError::BirthDate),
            ("110105203001010021", IdNumberError::FutureBirthDate),
            ("110105194912310021", IdNumberError::CheckCharacter),
        ];
        for (input, expected) in cases {
            assert_eq!(IdNumber::parse(input, today()).unwrap_err(), expected, "{input}");
        }
    }

    #[test]
    fn every_single_digit_change_breaks_the_check() {
        let good = "11010519491231002X";
        for position in 14..17 {
            let mut changed: Vec<u8> = good.bytes().collect();
            changed[position] = if changed[position] == b'9' { b'0' } else { changed[position] + 1 };
            let changed = String::from_utf8(changed).unwrap();
            assert_eq!(
                IdNumber::parse(&changed, today()).unwrap_err(),
                IdNumberError::CheckCharacter
            );
        }
    }

    #[test]
    fn age_counts_full_years_on_the_date() {
        let first17 = "44190020100615123";
        let id = format!("{first17}{}", check_character(first17).unwrap());
        let id = IdNumber::parse(&id, today()).unwrap();
        let on = |y, m, d| id.age_on(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(on(2026, 6, 14), 15);
        assert_eq!(on(2026, 6, 15), 16);
        assert_eq!(on(2010, 6, 15), 0);
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let id = IdNumber::parse("11010519491231002X", today()).unwrap();
        let a = IdHasher::new(SecretString::from("key-a"));
        let b = IdHasher::new(SecretString::from("key-b"));
        assert_eq!(a.hash(&id), a.hash(&id));
        assert_ne!(a.hash(&id), b.hash(&id));
        assert_eq!(a.hash(&id).len(), 64);
        assert!(!a.hash(&id).contains("110105"));
    }
}
