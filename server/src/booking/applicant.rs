//! Who an appointment is for, beyond name and ID number (`crate::person`, which also holds
//! the phone number): how a guardian is related to an applicant under 16.

use serde::{Deserialize, Serialize};

pub use crate::person::PhoneNumber;

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
