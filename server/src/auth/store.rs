use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use rusqlite::{params, OptionalExtension};

use super::{user_id_for, Consent, User, UserStore, WeChatSession};
use crate::store::{RedisStore, SqliteStore, StoreError};

#[async_trait]
impl UserStore for SqliteStore {
    async fn upsert_user(
        &self,
        session: &WeChatSession,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let id = user_id_for(&session.openid);
        let openid = session.openid.clone();
        let unionid = session.unionid.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, openid, unionid, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (id) DO UPDATE SET
                   unionid = COALESCE(excluded.unionid, users.unionid),
                   updated_at = excluded.updated_at",
                params![id, openid, unionid, now.to_rfc3339()],
            )?;
            Ok(select_user(tx, &id)?.expect("row written in this transaction"))
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| select_user(c, &id)).await
    }

    async fn set_user_phone(&self, id: &str, phone: &str) -> Result<(), StoreError> {
        let (id, phone) = (id.to_owned(), phone.to_owned());
        self.write(move |tx| {
            tx.execute(
                "UPDATE users SET phone = ?2 WHERE id = ?1",
                params![id, phone],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| Ok(tx.execute("DELETE FROM users WHERE id = ?1", [id])? == 1))
            .await
    }

    async fn record_consent(&self, id: &str, consent: &Consent) -> Result<(), StoreError> {
        let id = id.to_owned();
        let (version, at) = (consent.version.clone(), consent.accepted_at.to_rfc3339());
        self.write(move |tx| {
            tx.execute(
                "UPDATE users SET privacy_version = ?2, privacy_accepted_at = ?3 WHERE id = ?1",
                params![id, version, at],
            )?;
            Ok(())
        })
        .await
    }
}

fn select_user(c: &rusqlite::Connection, id: &str) -> Result<Option<User>, StoreError> {
    Ok(c.query_row(
        "SELECT id, openid, unionid, created_at, phone, privacy_version, privacy_accepted_at
         FROM users WHERE id = ?1",
        [id],
        |r| {
            Ok(User {
                id: r.get(0)?,
                openid: r.get(1)?,
                unionid: r.get(2)?,
                phone: r.get(4)?,
                created_at: parse_time(&r.get::<_, String>(3)?),
                consent: consent(r.get(5)?, r.get(6)?),
            })
        },
    )
    .optional()?)
}

/// The consent a user record holds: both its fields, or none.
fn consent(version: Option<String>, accepted_at: Option<String>) -> Option<Consent> {
    Some(Consent {
        version: version?,
        accepted_at: parse_time(&accepted_at?),
    })
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl RedisStore {
    /// The user's record (a hash).
    pub(crate) fn user_key(&self, id: &str) -> String {
        self.key(&format!("user:{id}"), "h")
    }
}

#[async_trait]
impl UserStore for RedisStore {
    async fn upsert_user(
        &self,
        session: &WeChatSession,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let id = user_id_for(&session.openid);
        let key = self.user_key(&id);
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_nx(&key, "created_at", now.to_rfc3339())
            .hset(&key, "openid", &session.openid)
            // WeChat's session key is not kept; one kept before is forgotten at the next login.
            .hdel(&key, "session_key");
        if let Some(unionid) = &session.unionid {
            pipe.hset(&key, "unionid", unionid);
        }
        let _: () = pipe.query_async(&mut conn).await?;
        self.user_by_id(&id)
            .await?
            .ok_or_else(|| StoreError::Backend("user vanished after upsert".into()))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let key = self.user_key(id);
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let (openid, unionid, created_at, phone, privacy_version, privacy_accepted_at): Fields =
            self.conn()
                .hmget(
                    &key,
                    &[
                        "openid",
                        "unionid",
                        "created_at",
                        "phone",
                        "privacy_version",
                        "privacy_accepted_at",
                    ],
                )
                .await?;
        Ok(openid.map(|openid| User {
            id: id.to_owned(),
            openid,
            unionid,
            phone,
            created_at: created_at.as_deref().map(parse_time).unwrap_or_default(),
            consent: consent(privacy_version, privacy_accepted_at),
        }))
    }

    async fn set_user_phone(&self, id: &str, phone: &str) -> Result<(), StoreError> {
        let key = self.user_key(id);
        let _: () = self.conn().hset(&key, "phone", phone).await?;
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let deleted: i64 = self.conn().del(self.user_key(id)).await?;
        Ok(deleted == 1)
    }

    async fn record_consent(&self, id: &str, consent: &Consent) -> Result<(), StoreError> {
        let key = self.user_key(id);
        let fields = [
            ("privacy_version", consent.version.clone()),
            ("privacy_accepted_at", consent.accepted_at.to_rfc3339()),
        ];
        let _: () = self.conn().hset_multiple(&key, &fields).await?;
        Ok(())
    }
}
