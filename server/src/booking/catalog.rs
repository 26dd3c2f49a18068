//! What can be booked where: the business types (fixed by law and price rules) and the halls
//! with their weekly schedules and closures (data files, replaceable by configuration).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// A 户政 business type about the resident ID card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// 有效期满换领
    ExpiryRenewal,
    /// 损坏换领
    DamageReplacement,
    /// 丢失补领
    LossReplacement,
    /// 首次申领 (under 16)
    FirstApplication,
}

/// The receipt from a certified photo studio or the 图像号 mini-program.
const PHOTO_RECEIPT: &str = "广东省居民身份证数字相片采集（检测）回执";

impl ServiceKind {
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::ExpiryRenewal,
        ServiceKind::DamageReplacement,
        ServiceKind::LossReplacement,
        ServiceKind::FirstApplication,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ServiceKind::ExpiryRenewal => "expiry_renewal",
            ServiceKind::DamageReplacement => "damage_replacement",
            ServiceKind::LossReplacement => "loss_replacement",
            ServiceKind::FirstApplication => "first_application",
        }
    }

    pub fn parse(id: &str) -> Result<Self, &'static str> {
        Self::ALL
            .into_iter()
            .find(|s| s.id() == id)
            .ok_or("未知的业务类型")
    }

    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::ExpiryRenewal => "有效期满换领",
            ServiceKind::DamageReplacement => "损坏换领",
            ServiceKind::LossReplacement => "丢失补领",
            ServiceKind::FirstApplication => "首次申领",
        }
    }

    /// 发改价格[2003]2322号: 20 元 to apply or renew, 40 元 to replace a lost or damaged card.
    pub fn fee_yuan(self) -> u32 {
        match self {
            ServiceKind::ExpiryRenewal | ServiceKind::FirstApplication => 20,
            ServiceKind::DamageReplacement | ServiceKind::LossReplacement => 40,
        }
    }

    pub fn materials(self) -> Vec<&'static str> {
        match self {
            ServiceKind::ExpiryRenewal => {
                vec!["原居民身份证", PHOTO_RECEIPT, "户口簿（个别情况需核对）"]
            }
            ServiceKind::DamageReplacement => vec!["损坏的原居民身份证", PHOTO_RECEIPT],
            ServiceKind::LossReplacement => vec![
                "户口簿或其他有效身份证件（驾驶证、护照）",
                "丢失情况的书面说明（代替原证）",
                PHOTO_RECEIPT,
            ],
            ServiceKind::FirstApplication => vec![
                "户口簿",
                PHOTO_RECEIPT,
                "监护人居民身份证",
                "监护关系证明（出生医学证明等；户口簿已体现的除外）",
            ],
        }
    }

    /// Only children under 16 (on the appointment day) apply for the first time here.
    pub fn max_age(self) -> Option<u32> {
        (self == ServiceKind::FirstApplication).then_some(15)
    }

    pub fn eligibility(self) -> &'static str {
        match self {
            ServiceKind::FirstApplication => "未满16周岁，须由监护人陪同",
            _ => "未满16周岁的须由监护人陪同",
        }
    }
}

/// A time range within a day, `09:00-12:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parse = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M");
        let period = text
            .split_once('-')
            .and_then(|(a, b)| {
                Some(Period {
                    start: parse(a).ok()?,
                    end: parse(b).ok()?,
                })
            })
            .filter(|p| p.start < p.end);
        period.ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a period like 09:00-12:00"))
        })
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    slot_minutes: Option<u32>,
    weekdays: Option<Vec<Period>>,
    saturday_family: Option<Vec<Period>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HallFile {
    id: String,
    name: String,
    town: String,
    area_code: Option<String>,
    group: Option<String>,
    address: Option<String>,
    capacity: Option<u32>,
    services: Option<Vec<ServiceKind>>,
    #[serde(default)]
    closed: Vec<NaiveDate>,
    #[serde(flatten)]
    schedule: ScheduleFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HallsFile {
    defaults: ScheduleFile,
    halls: Vec<HallFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidaysFile {
    closed: Vec<NaiveDate>,
    #[serde(default)]
    working: Vec<NaiveDate>,
}

/// A hall's week: 30-minute (configurable) slots in its periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub slot_minutes: u32,
    pub weekdays: Vec<Period>,
    pub saturday_family: Vec<Period>,
}

/// One 办证大厅.
#[derive(Debug, Clone, Serialize)]
pub struct Hall {
    pub id: String,
    pub name: String,
    pub town: String,
    pub area_code: Option<String>,
    pub group: Option<String>,
    pub address: Option<String>,
    pub services: Vec<ServiceKind>,
    #[serde(skip)]
    pub capacity: u32,
    #[serde(skip)]
    pub closed: BTreeSet<NaiveDate>,
    #[serde(skip)]
    pub schedule: Schedule,
}

impl Hall {
    pub fn offers(&self, service: ServiceKind) -> bool {
        self.services.contains(&service)
    }

    /// Opening hours for people: `周一至周五 09:00-12:00、14:00-17:30；周六 09:00-12:00（家庭专场）`.
    pub fn hours(&self) -> String {
        let join = |periods: &[Period]| {
            periods
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("、")
        };
        let mut hours = format!("周一至周五 {}", join(&self.schedule.weekdays));
        if !self.schedule.saturday_family.is_empty() {
            hours += &format!(
                "；周六 {}（家庭专场）",
                join(&self.schedule.saturday_family)
            );
        }
        hours + "；法定节假日休息"
    }
}

/// The halls and the public holidays, loaded once at start-up.
#[derive(Debug)]
pub struct Catalog {
    halls: Vec<Hall>,
    by_id: HashMap<String, usize>,
    pub holidays: BTreeSet<NaiveDate>,
    pub working_weekends: BTreeSet<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct CatalogError {
    file: String,
    message: String,
}

const BUILT_IN_HALLS: &str = include_str!("../../data/halls.toml");
const BUILT_IN_HOLIDAYS: &str = include_str!("../../data/holidays.toml");

impl Catalog {
    /// The built-in data files, or the files configured instead.
    pub fn load(
        halls_file: Option<&Path>,
        holidays_file: Option<&Path>,
        default_capacity: u32,
    ) -> Result<Self, CatalogError> {
        let read = |path: Option<&Path>, built_in: &'static str, name: &str| match path {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|e| CatalogError {
                    file: path.display().to_string(),
                    message: e.to_string(),
                }),
            None => Ok((format!("built-in {name}"), built_in.to_owned())),
        };
        let (halls_name, halls_text) = read(halls_file, BUILT_IN_HALLS, "halls.toml")?;
        let (holidays_name, holidays_text) =
            read(holidays_file, BUILT_IN_HOLIDAYS, "holidays.toml")?;
        let invalid = |file: &str| {
            let file = file.to_owned();
            move |message: String| CatalogError { file, message }
        };
        let halls: HallsFile =
            toml::from_str(&halls_text).map_err(|e| invalid(&halls_name)(e.to_string()))?;
        let holidays: HolidaysFile =
            toml::from_str(&holidays_text).map_err(|e| invalid(&holidays_name)(e.to_string()))?;
        Self::build(halls, holidays, default_capacity).map_err(invalid(&halls_name))
    }

    fn build(
        file: HallsFile,
        holidays: HolidaysFile,
        default_capacity: u32,
    ) -> Result<Self, String> {
        let defaults = Schedule {
            slot_minutes: file.defaults.slot_minutes.unwrap_or(30),
            weekdays: file.defaults.weekdays.unwrap_or_default(),
            saturday_family: file.defaults.saturday_family.unwrap_or_default(),
        };
        let mut halls = Vec::with_capacity(file.halls.len());
        let mut by_id = HashMap::new();
        for hall in file.halls {
            // Hall ids are part of slot ids (`dongcheng-20261127-0930`): keep them plain.
            let plain = !hall.id.is_empty()
                && hall
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !plain {
                return Err(format!(
                    "hall id `{}` must be lower-case letters, digits or `_`",
                    hall.id
                ));
            }
            let schedule = Schedule {
                slot_minutes: hall.schedule.slot_minutes.unwrap_or(defaults.slot_minutes),
                weekdays: hall.schedule.weekdays.unwrap_or(defaults.weekdays.clone()),
                saturday_family: hall
                    .schedule
                    .saturday_family
                    .unwrap_or(defaults.saturday_family.clone()),
            };
            if !(5..=240).contains(&schedule.slot_minutes) {
                return Err(format!("hall `{}`: slot_minutes must be 5 to 240", hall.id));
            }
            let capacity = hall.capacity.unwrap_or(default_capacity);
            if capacity == 0 {
                return Err(format!("hall `{}`: capacity must be at least 1", hall.id));
            }
            if by_id.insert(hall.id.clone(), halls.len()).is_some() {
                return Err(format!("hall id `{}` appears twice", hall.id));
            }
            halls.push(Hall {
                id: hall.id,
                name: hall.name,
                town: hall.town,
                area_code: hall.area_code,
                group: hall.group,
                address: hall.address,
                services: hall.services.unwrap_or_else(|| ServiceKind::ALL.to_vec()),
                capacity,
                closed: hall.closed.into_iter().collect(),
                schedule,
            });
        }
        Ok(Catalog {
            halls,
            by_id,
            holidays: holidays.closed.into_iter().collect(),
            working_weekends: holidays.working.into_iter().collect(),
        })
    }

    pub fn halls(&self) -> &[Hall] {
        &self.halls
    }

    pub fn hall(&self, id: &str) -> Option<&Hall> {
        self.by_id.get(id).map(|&i| &self.halls[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_data_has_every_town_and_the_two_centres() {
        let catalog = Catalog::load(None, None, 6).unwrap();
        assert_eq!(catalog.halls().len(), 34);
        let towns: BTreeSet<&str> = catalog.halls().iter().map(|h| h.town.as_str()).collect();
        assert_eq!(towns.len(), 34, "one hall per 镇街");
        assert_eq!(towns.iter().filter(|t| t.ends_with("街道")).count(), 4);
        assert_eq!(towns.iter().filter(|t| t.ends_with('镇')).count(), 28);
        let dongcheng = catalog.hall("dongcheng").unwrap();
        assert_eq!(dongcheng.name, "东莞市公安局东城分局办证大厅");
        assert_eq!(dongcheng.capacity, 6);
        assert_eq!(dongcheng.services.len(), 4);
        assert!(catalog.hall("songshanhu").is_some());
        assert!(catalog.hall("shiminzhongxin").is_some());
        assert_eq!(
            dongcheng.hours(),
            "周一至周五 09:00-12:00、14:00-17:30；周六 09:00-12:00（家庭专场）；法定节假日休息"
        );
        assert!(catalog
            .holidays
            .contains(&NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()));
        assert!(catalog
            .working_weekends
            .contains(&NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()));
    }

    #[test]
    fn a_configured_file_replaces_the_built_in_one_and_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("halls.toml");
        std::fs::write(
            &path,
            r#"
[defaults]
weekdays = ["08:30-12:00"]
[[halls]]
id = "test_hall"
name = "测试大厅"
town = "测试镇"
capacity = 2
closed = ["2026-12-01"]
services = ["expiry_renewal"]
"#,
        )
        .unwrap();
        let catalog = Catalog::load(Some(&path), None, 6).unwrap();
        let hall = catalog.hall("test_hall").unwrap();
        assert_eq!(hall.capacity, 2);
        assert_eq!(hall.services, vec![ServiceKind::ExpiryRenewal]);
        assert_eq!(hall.schedule.weekdays[0].to_string(), "08:30-12:00");
        assert!(hall.schedule.saturday_family.is_empty());

        std::fs::write(
            &path,
            "[defaults]\n[[halls]]\nid = \"Bad-Id\"\nname = \"x\"\ntown = \"y\"\n",
        )
        .unwrap();
        let err = Catalog::load(Some(&path), None, 6).unwrap_err().to_string();
        assert!(
            err.contains("Bad-Id") && err.contains("halls.toml"),
            "{err}"
        );
        std::fs::write(
            &path,
            "halls = []\n[defaults]\nweekdays = [\"12:00-09:00\"]\n",
        )
        .unwrap();
        let err = Catalog::load(Some(&path), None, 6).unwrap_err().to_string();
        assert!(err.contains("12:00-09:00"), "{err}");
    }

    #[test]
    fn services_parse_by_id() {
        for s in ServiceKind::ALL {
            assert_eq!(ServiceKind::parse(s.id()), Ok(s));
        }
        assert!(ServiceKind::parse("passport").is_err());
        assert_eq!(ServiceKind::LossReplacement.fee_yuan(), 40);
        assert!(ServiceKind::ALL
            .iter()
            .all(|s| s.materials().contains(&PHOTO_RECEIPT)));
    }
}
