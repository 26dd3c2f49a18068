//! Who an appointment is for: the applicant and, under 16, the guardian who comes along.

use serde::{Deserialize, Serialize};

/// A name as on the 户口簿: 2 to 20 Chinese characters, with `·` between the parts of a
/// transliterated name (阿卜杜·热合曼).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let name: String = input
            .trim()
            .chars()
            .map(|c| if matches!(c, '•' | '・' | '．') { '·' } else { c })
            .collect();
        let count = name.chars().count();
        if count < 2 || count > 20 {
            return Err("应为2至20个汉字");
        }
        if !name.chars().all(|c| is_han(c) || c == '·')
            || name.starts_with('·')
            || name.ends_with('·')
            || name.contains("··")
        {
            return Err("只能包含汉字（少数民族姓名可用“·”分隔）");
        }
        Ok(PersonName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{20000}'..='\u{3134F}')
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
            Err("应为11位中国大陆手机号码")
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
            _ => Err("应为 father、mother、grandparent 或 legal_guardian"),
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
    fn names() {
        assert_eq!(PersonName::parse(" 张三 ").unwrap().as_str(), "张三");
        assert_eq!(
            PersonName::parse("阿卜杜•热合曼").unwrap().as_str(),
            "阿卜杜·热合曼"
        );
        for bad in ["张", "", "Zhang San", "张3", "·张三", "张··三", &"张".repeat(21)] {
            assert!(PersonName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        for good in ["13812345678", "+86 138-1234-5678", "008613812345678"] {
            assert_eq!(PhoneNumber::parse(good).unwrap().as_str(), "13812345678");
        }
        for bad in ["12812345678", "1381234567", "138123456789", "0769-22223333", "1381234567x"] {
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
