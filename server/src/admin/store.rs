use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use rusqlite::{params, OptionalExtension};

use super::{AccountChange, Admin, AdminStore, Role};
use crate::store::{RedisStore, SqliteStore, StoreError};

fn role(text: &str) -> Result<Role, StoreError> {
    text.parse().map_err(StoreError::Backend)
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Hall ids are letters, digits, `_` and `-` (or `*`): a comma separates them.
fn halls(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

const COLUMNS: &str = "id, username, role, password_hash, created_at, halls, disabled, token_epoch";

fn admin_row(r: &rusqlite::Row) -> rusqlite::Result<(Admin, String)> {
    let role_text: String = r.get(2)?;
    Ok((
        Admin {
            id: r.get(0)?,
            username: r.get(1)?,
            role: Role::Staff,
            password_hash: r.get(3)?,
            created_at: time(&r.get::<_, String>(4)?),
            halls: halls(&r.get::<_, String>(5)?),
            disabled: r.get::<_, i64>(6)? != 0,
            token_epoch: r.get::<_, i64>(7)? as u64,
        },
        role_text,
    ))
}

fn admin_where(
    c: &rusqlite::Connection,
    column: &str,
    value: &str,
) -> Result<Option<Admin>, StoreError> {
    let row = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM admins WHERE {column} = ?1"),
            [value],
            admin_row,
        )
        .optional()?;
    row.map(|(admin, r)| {
        Ok(Admin {
            role: role(&r)?,
            ..admin
        })
    })
    .transpose()
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn insert_admin(&self, admin: &Admin) -> Result<Option<()>, StoreError> {
        let admin = admin.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                "INSERT INTO admins (id, username, role, password_hash, created_at, halls, disabled, token_epoch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (username) DO NOTHING",
                params![
                    admin.id,
                    admin.username,
                    admin.role.as_str(),
                    admin.password_hash,
                    admin.created_at.to_rfc3339(),
                    admin.halls.join(","),
                    admin.disabled,
                    admin.token_epoch as i64
                ],
            )?;
            Ok((inserted == 1).then_some(()))
        })
        .await
    }

    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError> {
        let username = username.to_owned();
        self.read(move |c| admin_where(c, "username", &username))
            .await
    }

    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| admin_where(c, "id", &id)).await
    }

    async fn change_admin(
        &self,
        username: &str,
        change: AccountChange,
    ) -> Result<Option<Admin>, StoreError> {
        let username = username.to_owned();
        self.write(move |tx| {
            let set = match change {
                AccountChange::Disable => "disabled = 1, token_epoch = token_epoch + 1",
                AccountChange::Enable => "disabled = 0",
                AccountChange::RevokeTokens => "token_epoch = token_epoch + 1",
            };
            tx.execute(
                &format!("UPDATE admins SET {set} WHERE username = ?1"),
                [&username],
            )?;
            admin_where(tx, "username", &username)
        })
        .await
    }

    async fn set_admin_halls(
        &self,
        username: &str,
        halls: &[String],
    ) -> Result<Option<Admin>, StoreError> {
        let (username, halls) = (username.to_owned(), halls.join(","));
        self.write(move |tx| {
            tx.execute(
                "UPDATE admins SET halls = ?2 WHERE username = ?1 AND role = 'staff'",
                [&username, &halls],
            )?;
            Ok(admin_where(tx, "username", &username)?.filter(|a| a.role == Role::Staff))
        })
        .await
    }
}

static INSERT_ADMIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
          redis.call('HSET', KEYS[1], 'id', ARGV[1], 'role', ARGV[2], 'password_hash', ARGV[3],
            'created_at', ARGV[4], 'halls', ARGV[5], 'disabled', '0', 'token_epoch', '0')
          return 1",
    )
});

/// A staff account's halls, only if it is one.
static SET_HALLS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HGET', KEYS[1], 'role') ~= 'staff' then return 0 end
          redis.call('HSET', KEYS[1], 'halls', ARGV[1])
          return 1",
    )
});

/// One account's hash: the change and the state it leaves are one step.
static CHANGE_ADMIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
          if ARGV[1] == 'disable' then
            redis.call('HSET', KEYS[1], 'disabled', '1')
            redis.call('HINCRBY', KEYS[1], 'token_epoch', 1)
          elseif ARGV[1] == 'enable' then
            redis.call('HSET', KEYS[1], 'disabled', '0')
          else
            redis.call('HINCRBY', KEYS[1], 'token_epoch', 1)
          end
          return 1",
    )
});

impl RedisStore {
    fn admin_key(&self, username: &str) -> String {
        self.key(&format!("admin:{username}"), "h")
    }

    /// An account's username by its id (the tokens name the id).
    fn admin_id_key(&self, id: &str) -> String {
        self.key(&format!("admin-id:{id}"), "s")
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
            .arg(admin.halls.join(","))
            .invoke_async(&mut self.conn())
            .await?;
        if inserted == 1 {
            // Another key's tag: a step of its own, which a login repeats if it was lost.
            let _: () = self
                .conn()
                .set(self.admin_id_key(&admin.id), &admin.username)
                .await?;
        }
        Ok((inserted == 1).then_some(()))
    }

    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError> {
        let admin = self.admin_hash(username).await?;
        if let Some(admin) = &admin {
            // Accounts from before the id index get it at their first look-up (a login).
            let _: bool = self
                .conn()
                .set_nx(self.admin_id_key(&admin.id), username)
                .await?;
        }
        Ok(admin)
    }

    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError> {
        let username: Option<String> = self.conn().get(self.admin_id_key(id)).await?;
        match username {
            Some(username) => Ok(self
                .admin_hash(&username)
                .await?
                .filter(|admin| admin.id == id)),
            None => Ok(None),
        }
    }

    async fn change_admin(
        &self,
        username: &str,
        change: AccountChange,
    ) -> Result<Option<Admin>, StoreError> {
        let change = match change {
            AccountChange::Disable => "disable",
            AccountChange::Enable => "enable",
            AccountChange::RevokeTokens => "revoke",
        };
        let changed: i64 = CHANGE_ADMIN
            .key(self.admin_key(username))
            .arg(change)
            .invoke_async(&mut self.conn())
            .await?;
        match changed {
            1 => self.admin_hash(username).await,
            _ => Ok(None),
        }
    }

    async fn set_admin_halls(
        &self,
        username: &str,
        halls: &[String],
    ) -> Result<Option<Admin>, StoreError> {
        let set: i64 = SET_HALLS
            .key(self.admin_key(username))
            .arg(halls.join(","))
            .invoke_async(&mut self.conn())
            .await?;
        match set {
            1 => self.admin_hash(username).await,
            _ => Ok(None),
        }
    }
}

impl RedisStore {
    async fn admin_hash(&self, username: &str) -> Result<Option<Admin>, StoreError> {
        let mut fields: HashMap<String, String> =
            self.conn().hgetall(self.admin_key(username)).await?;
        let mut take = |name: &str| fields.remove(name);
        let (Some(id), Some(r), Some(password_hash)) =
            (take("id"), take("role"), take("password_hash"))
        else {
            return Ok(None);
        };
        Ok(Some(Admin {
            id,
            username: username.to_owned(),
            role: role(&r)?,
            halls: take("halls").as_deref().map(halls).unwrap_or_default(),
            disabled: take("disabled").as_deref() == Some("1"),
            token_epoch: take("token_epoch")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
            password_hash,
            created_at: take("created_at").as_deref().map(time).unwrap_or_default(),
        }))
    }
}
