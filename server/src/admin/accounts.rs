//! The administrators' side: disable an account (its login is refused and every token it
//! holds stops passing at once), enable it again, or revoke all its tokens; read the audit log.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{AdminUser, Admins, Role};
use crate::audit::{audited, AuditLog};
use crate::error::ApiError;
use crate::routing::endpoint;

/// What an administrator does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// No login, and every token issued so far revoked.
    Disable,
    /// Logins again (tokens revoked by the disabling stay revoked).
    Enable,
    /// Every token issued so far revoked; the account logs in again.
    RevokeTokens,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // One route per change, so the audit log's action names it.
    for (action, change) in [
        ("disable", AccountChange::Disable),
        ("enable", AccountChange::Enable),
        ("revoke-tokens", AccountChange::RevokeTokens),
    ] {
        cfg.service(
            endpoint(&format!("/api/v1/admin/accounts/{{username}}/{action}")).post(
                move |admin: AdminUser, username: web::Path<String>, admins: web::Data<Admins>| {
                    change_account(admin, username, change, admins)
                },
            ),
        );
    }
    cfg.service(endpoint("/api/v1/admin/audit").get(audit_log));
}

/// Entries per page unless `limit` says fewer or more.
const AUDIT_PAGE: usize = 100;
const AUDIT_PAGE_MAX: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries older than this one (the `next_before` of the previous page).
    before: Option<u64>,
    /// One account's entries only.
    actor: Option<String>,
    limit: Option<usize>,
}

/// The audit log, newest first, a page at a time.
async fn audit_log(
    admin: AdminUser,
    query: web::Query<AuditQuery>,
    log: web::Data<AuditLog>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Admin)?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("每页条数应为 1 到 {AUDIT_PAGE_MAX}"),
        ));
    }
    let entries = log
        .store
        .audit_entries(query.before, query.actor.as_deref(), limit)
        .await?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "entries": entries,
        "next_before": next_before,
    })))
}

async fn change_account(
    admin: AdminUser,
    username: web::Path<String>,
    change: AccountChange,
    admins: web::Data<Admins>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Admin)?;
    if change == AccountChange::Disable {
        // The last administrator must not lock everyone out of the accounts by mistake.
        let target = admins.store.admin_by_username(&username).await?;
        if target.is_some_and(|t| t.id == admin.id) {
            return Err(ApiError::invalid_value("username", "不能停用自己的账号"));
        }
    }
    let account = admins
        .store
        .change_admin(&username, change)
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(admin = %admin.id, account = %account.id, ?change, "admin account changed");
    let mut response = HttpResponse::Ok().json(serde_json::json!({ "admin": account }));
    audited(&mut response, [account.id]);
    Ok(response)
}
