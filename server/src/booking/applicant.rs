//! Who an appointment is for, beyond name and ID number (`crate::person`): the phone number,
//! and how a guardian is related to an applicant under 16.

use serde::{Deserialize, Serialize};

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
}

/// How a guardian is related to an applicant under 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Father,
    Mother,
    Grandparent,
    LegalGuardian,
}

impl Relationship {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        match input.trim() {
            "father" | "父亲" => Ok(Relationship::Father),
            "mother" | "母亲" => Ok(Relationship::Mother),
            "grandparent" | "祖父母" | "外祖父母" => Ok(Relationship::Grandparent),
            "legal_guardian" | "其他监护人" => Ok(Relationship::LegalGuardian),
            _ => Err("与申请人的关系应为 father、mother、grandparent 或 legal_guardian"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Relationship::Father => "父亲",
            Relationship::Mother => "母亲",
            Relationship::Grandparent => "（外）祖父母",
            Relationship::LegalGuardian => "其他监护人",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        for good in ["13812345678", "+86 138-1234-5678", "008613812345678"] {
            assert_eq!(PhoneNumber::parse(good).unwrap().as_str(), "13812345678");
        }
        for bad in [
            "12812345678",
            "1381234567",
            "138123456789",
            "0769-22223333",
            "1381234567x",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relationships() {
        assert_eq!(Relationship::parse("母亲"), Ok(Relationship::Mother));
        assert_eq!(Relationship::parse("father"), Ok(Relationship::Father));
        assert!(Relationship::parse("uncle").is_err());
    }
}
