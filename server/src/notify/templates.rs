//! `[notify]` settings and the templates: for each event, the WeChat template id, the page
//! the card opens, and which of our fields fills which keyword. Development mode has
//! defaults (registered in the simulator at start-up) so the flow works out of the box.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::keywords::{fit, KeywordKind};
use super::{Event, Notification};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// `developer`, `trial` or `formal`: which version of the mini-program the card opens.
    pub miniprogram_state: String,
    /// `zh_CN`, `en_US`, `zh_HK` or `zh_TW`.
    pub lang: String,
    /// Event name (`booking_confirmed`, …) → template. Empty in development mode: defaults.
    pub templates: BTreeMap<Event, TemplateSettings>,
    /// Run the sender in this process.
    pub worker: bool,
    pub poll_interval_ms: u64,
    /// Entries claimed per pass, and sent at once.
    pub batch_size: usize,
    pub concurrency: usize,
    /// After this many attempts with transient failures an entry is dead.
    pub max_attempts: u32,
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// How long a claim holds; must exceed the time one send can take (two WeChat calls
    /// and a token refresh), or a slow worker's entry could be claimed twice.
    pub claim_lease_secs: u64,
    /// Refresh the access token this long before it expires; under WeChat's 5-minute
    /// overlap, so the refresh gets the new token rather than the old one again.
    pub token_refresh_margin_secs: i64,
    /// Production: when WeChat could not be asked for the account's templates at start-up,
    /// ask again this often until it answers.
    pub template_recheck_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            miniprogram_state: "formal".into(),
            lang: "zh_CN".into(),
            templates: BTreeMap::new(),
            worker: true,
            poll_interval_ms: 1000,
            batch_size: 50,
            concurrency: 16,
            max_attempts: 8,
            backoff_base_secs: 30,
            backoff_max_secs: 3600,
            claim_lease_secs: 60,
            token_refresh_margin_secs: 240,
            template_recheck_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    pub template_id: String,
    /// May name fields in braces: `pages/appointment/detail?id={appointment_id}`.
    pub page: Option<String>,
    /// WeChat keyword (`thing1`) → our field (`office`).
    pub keywords: BTreeMap<String, String>,
}

/// The templates in force, checked at start-up.
#[derive(Debug, Clone)]
pub struct Templates {
    by_event: BTreeMap<Event, TemplateSettings>,
    miniprogram_state: String,
    lang: String,
}

fn development_defaults() -> BTreeMap<Event, TemplateSettings> {
    let template = |id: &str, page: &str, keywords: &[(&str, &str)]| TemplateSettings {
        template_id: id.into(),
        page: Some(page.into()),
        keywords: keywords
            .iter()
            .map(|(k, f)| ((*k).into(), (*f).into()))
            .collect(),
    };
    let appointment = "pages/appointment/detail?id={appointment_id}";
    BTreeMap::from([
        (
            Event::BookingConfirmed,
            template(
                "dev-booking-confirmed",
                appointment,
                &[
                    ("thing1", "office"),
                    ("thing2", "service"),
                    ("time3", "time"),
                    ("character_string4", "code"),
                ],
            ),
        ),
        (
            Event::AppointmentReminder,
            template(
                "dev-appointment-reminder",
                appointment,
                &[
                    ("thing1", "office"),
                    ("time2", "time"),
                    ("character_string3", "code"),
                    ("thing4", "note"),
                ],
            ),
        ),
        (
            Event::AppointmentCancelled,
            template(
                "dev-appointment-cancelled",
                appointment,
                &[
                    ("thing1", "office"),
                    ("time2", "time"),
                    ("character_string3", "code"),
                    ("thing4", "reason"),
                ],
            ),
        ),
        (
            Event::ProgressChanged,
            template(
                "dev-progress-changed",
                appointment,
                &[
                    ("phrase1", "stage"),
                    ("thing2", "detail"),
                    ("character_string3", "code"),
                    ("time4", "updated_at"),
                ],
            ),
        ),
        (
            Event::ReviewResult,
            template(
                "dev-review-result",
                "pages/orders/detail?id={order_id}",
                &[
                    ("thing1", "document"),
                    ("phrase2", "result"),
                    ("character_string3", "receipt_no"),
                    ("thing4", "note"),
                ],
            ),
        ),
    ])
}

impl Templates {
    pub fn from_settings(settings: &NotifySettings, production: bool) -> anyhow::Result<Self> {
        let by_event = if settings.templates.is_empty() && !production {
            development_defaults()
        } else {
            settings.templates.clone()
        };
        for (event, template) in &by_event {
            if *event == Event::CustomerService {
                anyhow::bail!("notify.templates.customer_service: 客服 messages have no template");
            }
            if template.template_id.trim().is_empty() {
                anyhow::bail!("notify.templates.{}: template_id is empty", event.as_str());
            }
            for keyword in template.keywords.keys() {
                if KeywordKind::of(keyword).is_none() {
                    anyhow::bail!(
                        "notify.templates.{}: `{keyword}` is not a WeChat keyword (thing1, time2, character_string3, …)",
                        event.as_str()
                    );
                }
            }
        }
        if !matches!(
            settings.miniprogram_state.as_str(),
            "developer" | "trial" | "formal"
        ) {
            anyhow::bail!("notify.miniprogram_state must be developer, trial or formal");
        }
        if !matches!(
            settings.lang.as_str(),
            "zh_CN" | "en_US" | "zh_HK" | "zh_TW"
        ) {
            anyhow::bail!("notify.lang must be zh_CN, en_US, zh_HK or zh_TW");
        }
        Ok(Templates {
            by_event,
            miniprogram_state: settings.miniprogram_state.clone(),
            lang: settings.lang.clone(),
        })
    }

    pub fn get(&self, event: Event) -> Option<&TemplateSettings> {
        self.by_event.get(&event)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Event, &TemplateSettings)> {
        self.by_event.iter().map(|(e, t)| (*e, t))
    }

    pub fn template_ids(&self) -> impl Iterator<Item = &str> {
        self.by_event.values().map(|t| t.template_id.as_str())
    }

    /// What is wrong with our templates given the account's (`gettemplate`), one line per
    /// problem naming the event: a template id that does not exist, a keyword we fill that
    /// the template lacks, or one it has that we leave empty (WeChat refuses both with 47003).
    pub fn mismatches(&self, account: &[crate::wechat::AccountTemplate]) -> Vec<String> {
        let mut problems = Vec::new();
        for (event, ours) in self.iter() {
            let name = event.as_str();
            let id = &ours.template_id;
            let Some(theirs) = account.iter().find(|t| &t.template_id == id) else {
                problems.push(format!(
                    "notify.templates.{name}: template `{id}` does not exist in the WeChat account"
                ));
                continue;
            };
            for keyword in ours.keywords.keys() {
                if !theirs.keywords.contains(keyword) {
                    problems.push(format!(
                        "notify.templates.{name}: template `{id}` has no keyword `{keyword}` (it has {})",
                        theirs.keywords.join(", ")
                    ));
                }
            }
            for keyword in &theirs.keywords {
                if !ours.keywords.contains_key(keyword) {
                    problems.push(format!(
                        "notify.templates.{name}: template `{id}` needs `{keyword}`, which is not configured"
                    ));
                }
            }
        }
        problems
    }

    /// The message for `notification` to `openid`, or why it cannot be sent.
    pub fn render(
        &self,
        notification: &Notification,
        openid: &str,
    ) -> Result<crate::wechat::SubscribeMessage, String> {
        let template = self
            .get(notification.event)
            .ok_or_else(|| format!("no template configured for {}", notification.event.as_str()))?;
        let mut data = Map::new();
        for (keyword, field) in &template.keywords {
            let kind = KeywordKind::of(keyword).ok_or_else(|| format!("bad keyword {keyword}"))?;
            let value = notification
                .fields
                .get(field)
                .ok_or_else(|| format!("{keyword}: the notification has no `{field}`"))?;
            let value = fit(kind, value).map_err(|why| format!("{keyword} ({field}): {why}"))?;
            data.insert(keyword.clone(), json!({ "value": value }));
        }
        let page = template.page.as_ref().map(|page| {
            notification
                .fields
                .iter()
                .fold(page.clone(), |page, (name, value)| {
                    page.replace(&format!("{{{name}}}"), value)
                })
        });
        Ok(crate::wechat::SubscribeMessage {
            touser: openid.to_owned(),
            template_id: template.template_id.clone(),
            page,
            data: data.into_iter().collect::<Map<String, Value>>(),
            miniprogram_state: self.miniprogram_state.clone(),
            lang: self.lang.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{AppointmentFacts, Notification};

    #[test]
    fn renders_keywords_page_and_shortens_long_text() {
        let templates = Templates::from_settings(&NotifySettings::default(), false).unwrap();
        let facts = AppointmentFacts {
            appointment_id: "a1",
            user_id: "u1",
            code: "BZ12345",
            office: "东莞市公安局南城分局户政业务办理大厅（南城街道鸿福路）",
            service: "身份证换领",
            starts_at: chrono::DateTime::parse_from_rfc3339("2025-03-05T09:30:00+08:00").unwrap(),
        };
        let n = Notification::booking_confirmed(&facts, chrono::Utc::now());
        let message = templates.render(&n, "o1").unwrap();
        assert_eq!(
            message.page.as_deref(),
            Some("pages/appointment/detail?id=a1")
        );
        assert_eq!(message.data["character_string4"]["value"], "BZ12345");
        assert_eq!(message.data["time3"]["value"], "2025年03月05日 09:30");
        let office = message.data["thing1"]["value"].as_str().unwrap();
        assert_eq!(office.chars().count(), 20);
    }

    #[test]
    fn mismatches_name_the_event() {
        let templates = Templates::from_settings(&NotifySettings::default(), false).unwrap();
        let account: Vec<_> = templates
            .iter()
            .map(|(_, t)| crate::wechat::AccountTemplate {
                template_id: t.template_id.clone(),
                keywords: t.keywords.keys().cloned().collect(),
            })
            .collect();
        assert!(templates.mismatches(&account).is_empty());
        let mut changed = account.clone();
        changed.retain(|t| t.template_id != "dev-review-result");
        changed[0].keywords[0] = "thing9".into();
        let problems = templates.mismatches(&changed).join("\n");
        assert!(
            problems.contains(
                "notify.templates.review_result: template `dev-review-result` does not exist"
            ),
            "{problems}"
        );
        assert!(problems.contains("notify.templates.booking_confirmed: template `dev-booking-confirmed` has no keyword `character_string4`"), "{problems}");
        assert!(problems.contains("needs `thing9`"), "{problems}");
    }

    #[test]
    fn production_needs_its_own_templates_and_bad_keywords_are_refused() {
        let templates = Templates::from_settings(&NotifySettings::default(), true).unwrap();
        assert_eq!(templates.template_ids().count(), 0);
        let mut settings = NotifySettings::default();
        settings.templates.insert(
            Event::BookingConfirmed,
            TemplateSettings {
                template_id: "t".into(),
                page: None,
                keywords: BTreeMap::from([("colour1".into(), "office".into())]),
            },
        );
        assert!(Templates::from_settings(&settings, true).is_err());
    }
}
