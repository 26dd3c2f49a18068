//! Subscribe-message values made to fit WeChat's rules (`wechat::keywords`) before sending,
//! so WeChat never answers 47003. Only free text (`thing`) is shortened, at a character
//! boundary and marked with `…`; a number, code, time or name that does not fit is refused,
//! since a cut one would be wrong.

use crate::wechat::keywords::{chars, THING_MAX};
pub use crate::wechat::keywords::{check, KeywordKind};

/// Returns the value WeChat will accept for `kind`: unchanged, shortened (`thing` only), or
/// an error saying why it cannot be sent.
pub fn fit(kind: KeywordKind, value: &str) -> Result<String, String> {
    let value = value.trim();
    let value = if kind == KeywordKind::Thing && chars(value) > THING_MAX {
        value
            .chars()
            .take(THING_MAX - 1)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        value.to_owned()
    };
    check(kind, &value).map_err(str::to_owned)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::KeywordKind as K;
    use super::*;

    #[test]
    fn kinds_come_from_the_key() {
        assert_eq!(KeywordKind::of("thing1"), Some(K::Thing));
        assert_eq!(
            KeywordKind::of("character_string12"),
            Some(K::CharacterString)
        );
        assert_eq!(KeywordKind::of("phone_number3"), Some(K::PhoneNumber));
        assert_eq!(KeywordKind::of("thing"), None);
        assert_eq!(KeywordKind::of("colour1"), None);
    }

    #[test]
    fn thing_is_shortened_at_a_character_boundary() {
        let long = "东莞市公安局南城分局户政业务办理大厅（南城街道鸿福路）";
        let fitted = fit(K::Thing, long).unwrap();
        assert_eq!(fitted.chars().count(), 20);
        assert!(fitted.ends_with('…'));
        assert!(long.starts_with(fitted.trim_end_matches('…')));
        assert_eq!(fit(K::Thing, "南城户政大厅").unwrap(), "南城户政大厅");
        assert!(fit(K::Thing, "  ").is_err());
    }

    #[test]
    fn what_cannot_be_shortened_is_refused() {
        assert!(fit(K::CharacterString, "BZ-20250305-0001").is_ok());
        assert!(fit(K::CharacterString, &"A".repeat(33)).is_err());
        assert!(fit(K::CharacterString, "回执123").is_err());
        assert!(fit(K::Number, "12.50").is_ok());
        assert!(fit(K::Number, "12a").is_err());
        assert!(fit(K::Phrase, "已寄出").is_ok());
        assert!(fit(K::Phrase, "已经寄出了啊").is_err());
        assert!(fit(K::Name, "用户410774").is_err());
        assert!(fit(K::Name, "张三").is_ok());
        assert!(fit(K::Name, &"张".repeat(11)).is_err());
        assert!(fit(K::Name, &"a".repeat(20)).is_ok());
        assert!(fit(K::PhoneNumber, "+86-0769-22888888").is_ok());
        assert!(fit(K::PhoneNumber, "0769-2288888888888888").is_err());
        assert!(fit(K::CarNumber, "粤S8Z8888挂").is_err(), "9 characters");
        assert!(fit(K::CarNumber, "粤A8Z888挂").is_ok());
        assert!(fit(K::Amount, "¥20.00").is_ok());
        assert!(fit(K::Amount, "20元").is_err());
        assert!(fit(K::Symbol, "-").is_ok());
        assert!(fit(K::Letter, "abc").is_ok());
    }

    #[test]
    fn times_and_dates() {
        assert!(fit(K::Time, "15:01").is_ok());
        assert!(fit(K::Time, "2025年03月05日 09:30").is_ok());
        assert!(fit(K::Time, "2025年03月05日 09:30 ~ 2025年03月05日 10:00").is_ok());
        assert!(fit(K::Time, "25:00").is_err());
        assert!(fit(K::Time, "明天上午").is_err());
        assert!(fit(K::Date, "2019年10月1日").is_ok());
        assert!(fit(K::Date, "2019-10-01 15:01").is_ok());
        assert!(fit(K::Date, "10月1日").is_err());
    }
}
