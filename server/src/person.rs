//! Who an errand is for: the applicant's name and 居民身份证号码, parsed once at the edge so
//! every capability (booking, receipts) holds only values that cannot be wrong. `Debug` masks
//! them, so they cannot leak into a log line by accident.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, FieldError};
use crate::telemetry::mask;

/// An 18-character citizen ID number (GB 11643-1999): 6-digit area code, birth date
/// YYYYMMDD, 3-digit sequence, and a check character (ISO 7064 MOD 11-2, `X` for 10).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("身份证号码应为18位")]
    Length,
    #[error("身份证号码前17位应为数字，最后一位为数字或X")]
    Characters,
    #[error("身份证号码的地址码不正确")]
    AreaCode,
    #[error("身份证号码中的出生日期无效")]
    BirthDate,
    #[error("身份证号码中的出生日期晚于今天")]
    FutureBirthDate,
    #[error("身份证号码校验位不正确，请核对")]
    CheckDigit,
}

/// The length and the characters are the contract's pattern; the rest only the server knows.
impl FieldError for IdNumberError {
    fn code(&self) -> ErrorCode {
        match self {
            IdNumberError::Length | IdNumberError::Characters => ErrorCode::InvalidInput,
            _ => ErrorCode::InvalidValue,
        }
    }
}

/// GB 11643-1999 weights of the first 17 digits, and the check character for each remainder.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// GB/T 2260 province codes: the first two digits.
const PROVINCES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

impl IdNumber {
    pub fn parse(input: &str) -> Result<Self, IdNumberError> {
        let text = input.trim().to_ascii_uppercase();
        if text.chars().count() != 18 {
            return Err(IdNumberError::Length);
        }
        let bytes = text.as_bytes();
        let last = bytes[17];
        if !bytes[..17].iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }
        if !PROVINCES.contains(&&text[..2]) {
            return Err(IdNumberError::AreaCode);
        }
        NaiveDate::parse_from_str(&text[6..14], "%Y%m%d")
            .ok()
            .filter(|born| born.year() >= 1900)
            .ok_or(IdNumberError::BirthDate)?;
        let sum: u32 = bytes[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        if CHECK[(sum % 11) as usize] != char::from(last) {
            return Err(IdNumberError::CheckDigit);
        }
        Ok(IdNumber(text))
    }

    /// `parse`, and the person must be born by `today` (the server clock's local date).
    pub fn parse_as_of(input: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let id = Self::parse(input)?;
        if id.birth_date() > today {
            return Err(IdNumberError::FutureBirthDate);
        }
        Ok(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("checked by parse")
    }

    /// Full years (周岁) on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let born = self.birth_date();
        let birthday_passed = (date.month(), date.day()) >= (born.month(), born.day());
        let years = date.year() - born.year() - i32::from(!birthday_passed);
        years.max(0) as u32
    }

    /// `4419**********123X`: what a receipt, a log line or a list shows.
    pub fn masked(&self) -> String {
        mask::id_number(&self.0)
    }
}

impl TryFrom<String> for IdNumber {
    type Error = IdNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        IdNumber::parse(&value)
    }
}

impl From<IdNumber> for String {
    fn from(value: IdNumber) -> Self {
        value.0
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

/// A person's name as on the ID card: Chinese characters, with `·` between the parts of
/// some minority and foreign names, or Latin letters and spaces; 1–30 characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonNameError {
    #[error("请填写姓名")]
    Empty,
    #[error("姓名不能超过30个字符")]
    TooLong,
    #[error("姓名只能包含汉字、字母、空格和间隔号·")]
    Characters,
}

impl FieldError for PersonNameError {}

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, PersonNameError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(PersonNameError::Empty);
        }
        if text.chars().count() > 30 {
            return Err(PersonNameError::TooLong);
        }
        let is_han = |c: char| matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}');
        let allowed = |c: char| is_han(c) || c.is_ascii_alphabetic() || matches!(c, '·' | ' ');
        if !text.chars().all(allowed) || !text.chars().any(|c| is_han(c) || c.is_alphabetic()) {
            return Err(PersonNameError::Characters);
        }
        Ok(PersonName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `张**`.
    pub fn masked(&self) -> String {
        mask::name(&self.0)
    }

    /// What a record shows once its person's name was removed (retention): no one's name.
    pub fn removed() -> Self {
        PersonName("已删除".to_owned())
    }
}

impl TryFrom<String> for PersonName {
    type Error = PersonNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PersonName::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> Self {
        value.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

/// A mainland mobile number, stored as its 11 digits (`+86`, spaces and dashes dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let compact: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .unwrap_or(&compact);
        let bytes = digits.as_bytes();
        let valid = bytes.len() == 11
            && bytes.iter().all(u8::is_ascii_digit)
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1]);
        if valid {
            Ok(PhoneNumber(digits.to_owned()))
        } else {
            Err("手机号码应为11位中国大陆手机号")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a record holds once its person's number was removed (retention): nothing.
    pub fn removed() -> Self {
        PhoneNumber(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_number_check_digit() {
        // Check characters computed independently (Python) with the GB 11643 weights.
        let id = IdNumber::parse("441900199003070024").unwrap();
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1990, 3, 7).unwrap()
        );
        assert_eq!(
            IdNumber::parse("441900199003070021"),
            Err(IdNumberError::CheckDigit)
        );
        let x = IdNumber::parse(" 44190019851120301x ").unwrap();
        assert_eq!(x.as_str(), "44190019851120301X");
    }

    #[test]
    fn id_number_rejects_malformed() {
        assert_eq!(IdNumber::parse("4419001990"), Err(IdNumberError::Length));
        assert_eq!(
            IdNumber::parse("4419001990030700AX"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            IdNumber::parse("441900199002300028"),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            IdNumber::parse("４４１９００１９９００３０７００２４"),
            Err(IdNumberError::Characters)
        );
    }

    #[test]
    fn id_number_area_code_century_future_and_age() {
        // 11010519491231002X is the standard's own example.
        assert!(IdNumber::parse("11010519491231002X").is_ok());
        assert_eq!(
            IdNumber::parse("99010519491231002X"),
            Err(IdNumberError::AreaCode)
        );
        // The standard's other example: right check character, born 1880.
        assert_eq!(
            IdNumber::parse("440524188001010014"),
            Err(IdNumberError::BirthDate)
        );
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        // Born 2030-01-01, check characters computed independently (Python).
        assert_eq!(
            IdNumber::parse_as_of("110105203001010028", today),
            Err(IdNumberError::FutureBirthDate)
        );
        let child = IdNumber::parse_as_of("441900201006151233", today).unwrap();
        let on = |y, m, d| child.age_on(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(on(2026, 6, 14), 15);
        assert_eq!(on(2026, 6, 15), 16);
        assert_eq!(on(2010, 6, 15), 0);
    }

    #[test]
    fn debug_masks() {
        let id = IdNumber::parse("44190019851120301X").unwrap();
        assert_eq!(format!("{id:?}"), "IdNumber(4419**********301X)");
        let name = PersonName::parse("张三丰").unwrap();
        assert_eq!(format!("{name:?}"), "PersonName(张**)");
    }

    #[test]
    fn names() {
        assert!(PersonName::parse("阿依古丽·买买提").is_ok());
        assert!(PersonName::parse("John Smith").is_ok());
        assert_eq!(PersonName::parse("  "), Err(PersonNameError::Empty));
        assert_eq!(PersonName::parse("张3"), Err(PersonNameError::Characters));
        assert_eq!(PersonName::parse("··"), Err(PersonNameError::Characters));
        assert_eq!(
            PersonName::parse(&"张".repeat(31)),
            Err(PersonNameError::TooLong)
        );
    }
}
