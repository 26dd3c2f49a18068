use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use rusqlite::{params, OptionalExtension};

use super::{Admin, AdminStore, Role};
use crate::store::{RedisStore, SqliteStore, StoreError};

fn role(text: &str) -> Result<Role, StoreError> {
    text.parse().map_err(StoreError::Backend)
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn insert_admin(&self, admin: &Admin) -> Result<Option<()>, StoreError> {
        let admin = admin.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                "INSERT INTO admins (id, username, role, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (username) DO NOTHING",
                params![
                    admin.id,
                    admin.username,
                    admin.role.as_str(),
                    admin.password_hash,
                    admin.created_at.to_rfc3339()
                ],
            )?;
            Ok((inserted == 1).then_some(()))
        })
        .await
    }

    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError> {
        let username = username.to_owned();
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT id, username, role, password_hash, created_at FROM admins WHERE username = ?1",
                    [username],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(id, username, r, password_hash, created)| {
                Ok(Admin {
                    id,
                    username,
                    role: role(&r)?,
                    password_hash,
                    created_at: time(&created),
                })
            })
            .transpose()
        })
        .await
    }
}

static INSERT_ADMIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
          redis.call('HSET', KEYS[1], 'id', ARGV[1], 'role', ARGV[2], 'password_hash', ARGV[3], 'created_at', ARGV[4])
          return 1",
    )
});

impl RedisStore {
    fn admin_key(&self, username: &str) -> String {
        self.key(&format!("admin:{username}"), "h")
    }
}

#[async_trait]
impl AdminStore for RedisStore {
    async fn insert_admin(&self, admin: &Admin) -> Result<Option<()>, StoreError> {
        let inserted: i64 = INSERT_ADMIN
            .key(self.admin_key(&admin.username))
            .arg(&admin.id)
            .arg(admin.role.as_str())
            .arg(&admin.password_hash)
            .arg(admin.created_at.to_rfc3339())
            .invoke_async(&mut self.conn())
            .await?;
        Ok((inserted == 1).then_some(()))
    }

    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError> {
        let fields: (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = self
            .conn()
            .hmget(
                self.admin_key(username),
                &["id", "role", "password_hash", "created_at"],
            )
            .await?;
        match fields {
            (Some(id), Some(r), Some(password_hash), created) => Ok(Some(Admin {
                id,
                username: username.to_owned(),
                role: role(&r)?,
                password_hash,
                created_at: created.as_deref().map(time).unwrap_or_default(),
            })),
            _ => Ok(None),
        }
    }
}
