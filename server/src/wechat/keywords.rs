//! WeChat's rules for subscribe-message values, by keyword type (the name without its
//! number: `thing1` is a `thing`), as one table: the simulator accepts what a row allows,
//! and `notify::keywords::fit` lets nothing else through, so WeChat never answers 47003.

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

/// One row of WeChat's table (订阅消息「参数值内容限制」): the keyword names of a type, what
/// a value must be, and how we say so.
struct Rule {
    kind: KeywordKind,
    names: &'static [&'static str],
    accepts: fn(&str) -> bool,
    why: &'static str,
}

/// The longest `thing` WeChat takes, in characters.
pub const THING_MAX: usize = 20;

const RULES: &[Rule] = &[
    Rule {
        kind: KeywordKind::Thing,
        names: &["thing"],
        accepts: |v| chars(v) <= THING_MAX,
        why: "须为不超过20个字符的文字",
    },
    Rule {
        kind: KeywordKind::Number,
        names: &["number"],
        accepts: |v| chars(v) <= 32 && is_decimal(v),
        why: "须为不超过32位的数字",
    },
    Rule {
        kind: KeywordKind::Letter,
        names: &["letter"],
        accepts: |v| chars(v) <= 32 && v.chars().all(|c| c.is_ascii_alphabetic()),
        why: "须为不超过32个字母",
    },
    Rule {
        kind: KeywordKind::Symbol,
        names: &["symbol"],
        accepts: |v| chars(v) <= 5 && v.chars().all(is_symbol),
        why: "须为不超过5个符号",
    },
    Rule {
        kind: KeywordKind::CharacterString,
        names: &["character_string"],
        accepts: |v| chars(v) <= 32 && v.chars().all(|c| c.is_ascii_graphic()),
        why: "须为不超过32位的数字、字母或符号",
    },
    Rule {
        kind: KeywordKind::Time,
        names: &["time"],
        accepts: |v| is_moment(v, true),
        why: "须为24小时制时间，可带日期",
    },
    Rule {
        kind: KeywordKind::Date,
        names: &["date"],
        accepts: |v| is_moment(v, false) || is_moment(v, true),
        why: "须为年月日，可带时间",
    },
    Rule {
        kind: KeywordKind::Amount,
        names: &["amount"],
        accepts: is_amount,
        why: "须为货币符号加不超过10位的数字",
    },
    Rule {
        kind: KeywordKind::PhoneNumber,
        names: &["phone_number"],
        accepts: |v| chars(v) <= 17 && v.chars().all(|c| c.is_ascii_digit() || is_symbol(c)),
        why: "须为不超过17位的数字或符号",
    },
    Rule {
        kind: KeywordKind::CarNumber,
        names: &["car_number"],
        accepts: is_car_number,
        why: "须为不超过8位的车牌号（省份简称开头）",
    },
    Rule {
        kind: KeywordKind::Name,
        names: &["name"],
        accepts: is_name,
        why: "须为不超过10个汉字或20个字母的姓名",
    },
    Rule {
        kind: KeywordKind::Phrase,
        names: &["phrase"],
        accepts: |v| chars(v) <= 5 && v.chars().all(is_chinese),
        why: "须为不超过5个汉字",
    },
    Rule {
        kind: KeywordKind::Enum,
        names: &["enum", "enum_string"],
        accepts: |_| true,
        why: "须为模板枚举值之一",
    },
];

impl KeywordKind {
    /// The type of a data key such as `thing1` or `character_string3`.
    pub fn of(keyword: &str) -> Option<Self> {
        let digits = keyword.trim_start_matches(|c: char| !c.is_ascii_digit());
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let name = &keyword[..keyword.len() - digits.len()];
        RULES
            .iter()
            .find(|rule| rule.names.contains(&name))
            .map(|rule| rule.kind)
    }

    fn rule(self) -> &'static Rule {
        RULES
            .iter()
            .find(|rule| rule.kind == self)
            .expect("every kind has a row")
    }
}

/// A value's length as WeChat counts it: in characters.
pub fn chars(s: &str) -> usize {
    s.chars().count()
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

/// One currency symbol and at most 10 digits (decimals allowed), optionally ending in `元`.
fn is_amount(s: &str) -> bool {
    let mut rest = s.strip_suffix('元').unwrap_or(s).chars();
    let symbol = rest
        .next()
        .is_some_and(|c| matches!(c, '¥' | '￥' | '$' | '€' | '£'));
    let digits = rest.as_str();
    symbol && is_decimal(digits) && digits.replace('.', "").len() <= 10
}

/// A plate starts with its province's character (`粤`), then letters and digits; the last
/// may be a character too (`挂`, `学`).
fn is_car_number(s: &str) -> bool {
    let plate: Vec<char> = s.chars().collect();
    let last = plate.len().saturating_sub(1);
    (2..=8).contains(&plate.len())
        && is_chinese(plate[0])
        && plate[1..]
            .iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (i + 1 == last && is_chinese(*c)))
}

/// Up to 10 Chinese characters, or 20 letters or symbols; mixed counts as Chinese; no digits.
fn is_name(s: &str) -> bool {
    let limit = if s.chars().any(is_chinese) { 10 } else { 20 };
    chars(s) <= limit
        && s.chars()
            .all(|c| is_chinese(c) || c.is_ascii_alphabetic() || is_symbol(c) || c == '·')
}

/// Whether WeChat accepts `value` for a keyword of `kind`, and if not, why (in Chinese).
pub fn check(kind: KeywordKind, value: &str) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        return Err("值为空");
    }
    let rule = kind.rule();
    if (rule.accepts)(value) {
        Ok(())
    } else {
        Err(rule.why)
    }
}
