//! WeChat's rules for subscribe-message values, by keyword type (the name without its
//! number: `thing1` is a `thing`). Checked before sending so WeChat never answers 47003.
//! Only free text (`thing`) is shortened, at a character boundary and marked with `…`;
//! a number, code, time or name that does not fit is refused, since a cut one would be wrong.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordKind {
    Thing,
    Number,
    Letter,
    Symbol,
    CharacterString,
    Time,
    Date,
    Amount,
    PhoneNumber,
    CarNumber,
    Name,
    Phrase,
    /// Values from the template's own list; WeChat checks them.
    Enum,
}

impl KeywordKind {
    /// The type of a data key such as `thing1` or `character_string3`.
    pub fn of(keyword: &str) -> Option<Self> {
        let digits = keyword.trim_start_matches(|c: char| !c.is_ascii_digit());
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(match &keyword[..keyword.len() - digits.len()] {
            "thing" => KeywordKind::Thing,
            "number" => KeywordKind::Number,
            "letter" => KeywordKind::Letter,
            "symbol" => KeywordKind::Symbol,
            "character_string" => KeywordKind::CharacterString,
            "time" => KeywordKind::Time,
            "date" => KeywordKind::Date,
            "amount" => KeywordKind::Amount,
            "phone_number" => KeywordKind::PhoneNumber,
            "car_number" => KeywordKind::CarNumber,
            "name" => KeywordKind::Name,
            "phrase" => KeywordKind::Phrase,
            "enum" | "enum_string" => KeywordKind::Enum,
            _ => return None,
        })
    }
}

fn is_chinese(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

fn is_symbol(c: char) -> bool {
    c.is_ascii_punctuation() || c == ' '
}

/// Digits with at most one decimal point.
fn is_decimal(s: &str) -> bool {
    let mut parts = s.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    parts.next().is_none()
        && !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
}

/// `2025年3月5日`, `2025-03-05` or `2025/03/05`.
fn is_date(s: &str) -> bool {
    let numbers: Vec<&str> = s
        .split(['年', '月', '日', '-', '/'])
        .filter(|p| !p.is_empty())
        .collect();
    numbers.len() == 3
        && numbers[0].len() == 4
        && numbers
            .iter()
            .all(|n| n.len() <= 4 && n.chars().all(|c| c.is_ascii_digit()))
}

/// `15:01` (24-hour).
fn is_clock(s: &str) -> bool {
    let mut parts = s.split(':');
    let ok = |p: Option<&str>, max: u32| {
        p.filter(|p| (1..=2).contains(&p.len()))
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|n| n <= max)
    };
    ok(parts.next(), 23) && ok(parts.next(), 59) && parts.next().is_none()
}

/// A date, a time, or a date and a time; `~` joins a range.
fn is_moment(s: &str, time_required: bool) -> bool {
    s.split('~').all(|one| {
        let one = one.trim();
        match one.rsplit_once(' ') {
            Some((date, time)) => is_date(date.trim()) && is_clock(time),
            None if time_required => is_clock(one),
            None => is_date(one),
        }
    })
}

/// Returns the value WeChat will accept for `kind`: unchanged, shortened (`thing` only), or
/// an error saying why it cannot be sent.
pub fn fit(kind: KeywordKind, value: &str) -> Result<String, String> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars == 0 {
        return Err("值为空".into());
    }
    let refuse = |why: &str| Err(why.to_owned());
    match kind {
        KeywordKind::Thing if chars > 20 => {
            Ok(value.chars().take(19).chain(std::iter::once('…')).collect())
        }
        KeywordKind::Thing | KeywordKind::Enum => Ok(value.to_owned()),
        KeywordKind::Number if chars > 32 || !is_decimal(value) => refuse("须为不超过32位的数字"),
        KeywordKind::Letter if chars > 32 || !value.chars().all(|c| c.is_ascii_alphabetic()) => {
            refuse("须为不超过32个字母")
        }
        KeywordKind::Symbol if chars > 5 || !value.chars().all(is_symbol) => {
            refuse("须为不超过5个符号")
        }
        KeywordKind::CharacterString
            if chars > 32 || !value.chars().all(|c| c.is_ascii_graphic()) =>
        {
            refuse("须为不超过32位的数字、字母或符号")
        }
        KeywordKind::Time if !is_moment(value, true) => refuse("须为24小时制时间，可带日期"),
        KeywordKind::Date if !(is_moment(value, false) || is_moment(value, true)) => {
            refuse("须为年月日，可带时间")
        }
        KeywordKind::Amount => {
            let mut rest = value.strip_suffix('元').unwrap_or(value).chars();
            let symbol = rest
                .next()
                .filter(|c| matches!(c, '¥' | '￥' | '$' | '€' | '£'));
            let digits = rest.as_str();
            if symbol.is_none() || !is_decimal(digits) || digits.replace('.', "").len() > 10 {
                return refuse("须为货币符号加不超过10位的数字");
            }
            Ok(value.to_owned())
        }
        KeywordKind::PhoneNumber
            if chars > 17 || !value.chars().all(|c| c.is_ascii_digit() || is_symbol(c)) =>
        {
            refuse("须为不超过17位的数字或符号")
        }
        KeywordKind::CarNumber => {
            let body: Vec<char> = value.chars().collect();
            let inner_ok = body.iter().enumerate().all(|(i, c)| {
                c.is_ascii_alphanumeric() || ((i == 0 || i == chars - 1) && is_chinese(*c))
            });
            if chars > 8 || !inner_ok {
                return refuse("须为不超过8位的车牌号");
            }
            Ok(value.to_owned())
        }
        KeywordKind::Name => {
            let limit = if value.chars().any(is_chinese) {
                10
            } else {
                20
            };
            let allowed = value
                .chars()
                .all(|c| is_chinese(c) || c.is_ascii_alphabetic() || is_symbol(c) || c == '·');
            if chars > limit || !allowed {
                return refuse("须为不超过10个汉字或20个字母的姓名");
            }
            Ok(value.to_owned())
        }
        KeywordKind::Phrase if chars > 5 || !value.chars().all(is_chinese) => {
            refuse("须为不超过5个汉字")
        }
        _ => Ok(value.to_owned()),
    }
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
