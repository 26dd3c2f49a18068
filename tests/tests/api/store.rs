//! One conformance suite for what every backend stores (key-value with expiry, locks, users,
//! receipt orders, admin accounts, the audit log), run unchanged against SQLite and Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::notify::confirmation;
use chrono::{TimeDelta, Utc};
use server::admin::{create_admin_at, AccountChange, Role};
use server::audit::AuditEntry;
use server::auth::WeChatSession;
use server::notify::store::{Claimed, OutboxState, Outcome};
use server::store::{Lock, RedisAt, RedisStore};
use tests::{on_every_backend, AllStores, Backend, RedisCluster, RedisServer, SharedStore};

/// A short expiry, and a wait past it: long enough that the steps between a write and the
/// read that expects it fit inside on a loaded 2-core CI machine.
const BRIEF: Duration = Duration::from_secs(1);
const PAST_BRIEF: Duration = Duration::from_millis(1500);

async fn store(backend: Backend) -> Arc<dyn AllStores> {
    SharedStore::fresh(backend).await.open().await
}

async fn kv_roundtrip_and_expiry(backend: Backend) {
    let s = store(backend).await;
    assert_eq!(s.kv_get("a").await.unwrap(), None);
    s.kv_set("a", "1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(s.kv_get("a").await.unwrap().as_deref(), Some("1"));
    s.kv_set("a", "2", BRIEF).await.unwrap();
    assert_eq!(s.kv_get("a").await.unwrap().as_deref(), Some("2"));
    tokio::time::sleep(PAST_BRIEF).await;
    assert_eq!(s.kv_get("a").await.unwrap(), None, "expired value is gone");
    assert!(
        !s.kv_delete("a").await.unwrap(),
        "nothing to delete after expiry"
    );
}

/// Blobs under one prefix (an order's photos) are deleted together, and only they; on a
/// cluster each blob is keyed by its own name, so they lie on different masters.
async fn blobs_under_a_prefix_are_deleted_together(backend: Backend) {
    let s = store(backend).await;
    let order: Vec<String> = (0..12)
        .map(|n| format!("receipt-orders/o1/{n}/original.jpg"))
        .collect();
    for key in &order {
        s.blob_put(key, key.as_bytes()).await.unwrap();
    }
    s.blob_put("receipt-orders/o2/1/original.jpg", b"other")
        .await
        .unwrap();
    assert_eq!(s.blob_delete_under("receipt-orders/o1").await.unwrap(), 12);
    for key in &order {
        assert_eq!(s.blob_get(key).await.unwrap(), None, "{key}");
    }
    assert_eq!(
        s.blob_get("receipt-orders/o2/1/original.jpg")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"other"[..])
    );
}

async fn set_if_absent_respects_expiry(backend: Backend) {
    let s = store(backend).await;
    assert!(s.kv_set_if_absent("k", "first", BRIEF).await.unwrap());
    assert!(!s
        .kv_set_if_absent("k", "second", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(s.kv_get("k").await.unwrap().as_deref(), Some("first"));
    tokio::time::sleep(PAST_BRIEF).await;
    assert!(s
        .kv_set_if_absent("k", "third", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(s.kv_get("k").await.unwrap().as_deref(), Some("third"));
}

async fn delete_if_eq_only_deletes_the_expected_value(backend: Backend) {
    let s = store(backend).await;
    s.kv_set("token", "old", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!s.kv_delete_if_eq("token", "other").await.unwrap());
    assert_eq!(s.kv_get("token").await.unwrap().as_deref(), Some("old"));
    assert!(s.kv_delete_if_eq("token", "old").await.unwrap());
    assert_eq!(s.kv_get("token").await.unwrap(), None);
    assert!(!s.kv_delete_if_eq("token", "old").await.unwrap());
}

async fn counters_count_concurrent_increments_and_expire(backend: Backend) {
    let s = store(backend).await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.kv_incr("hits", Duration::from_secs(60)).await.unwrap() })
        })
        .collect();
    let mut seen: Vec<i64> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<_>>(),
        "every increment counted once"
    );
    assert_eq!(s.kv_incr("brief", BRIEF).await.unwrap(), 1);
    assert_eq!(s.kv_incr("brief", BRIEF).await.unwrap(), 2);
    tokio::time::sleep(PAST_BRIEF).await;
    assert_eq!(
        s.kv_incr("brief", BRIEF).await.unwrap(),
        1,
        "window restarted"
    );
}

async fn exactly_one_of_many_racers_gets_the_lock(backend: Backend) {
    let s = store(backend).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let lock = Lock::try_acquire(s.as_ref(), "refresh", Duration::from_secs(30))
                    .await
                    .unwrap();
                lock.is_some()
            })
        })
        .collect();
    let winners = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1);
}

async fn lock_release_and_expiry(backend: Backend) {
    let s = store(backend).await;
    let lock = Lock::try_acquire(s.as_ref(), "l", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(Lock::try_acquire(s.as_ref(), "l", Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    assert!(lock.release().await.unwrap());
    let short = Lock::try_acquire(s.as_ref(), "l", BRIEF)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(PAST_BRIEF).await;
    let next = Lock::try_acquire(s.as_ref(), "l", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(next.is_some(), "an expired lock passes on");
    assert!(
        !short.release().await.unwrap(),
        "the old holder cannot release the new holder's lock"
    );
}

async fn users_upsert_by_openid(backend: Backend) {
    let s = store(backend).await;
    let first = s
        .upsert_user(&session("o-1", None), Utc::now())
        .await
        .unwrap();
    assert_eq!(first.openid, "o-1");
    assert_eq!(first.unionid, None);
    let again = s
        .upsert_user(&session("o-1", Some("u-1")), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "same openid, same user");
    assert_eq!(again.created_at, first.created_at, "created once");
    assert_eq!(again.unionid.as_deref(), Some("u-1"));
    let kept = s
        .upsert_user(&session("o-1", None), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        kept.unionid.as_deref(),
        Some("u-1"),
        "a later login without unionid keeps it"
    );
    let other = s
        .upsert_user(&session("o-2", None), Utc::now())
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(s.user_by_id(&first.id).await.unwrap(), Some(kept));
    assert_eq!(s.user_by_id("missing").await.unwrap(), None);
}

fn session(openid: &str, unionid: Option<&str>) -> WeChatSession {
    WeChatSession {
        openid: openid.into(),
        unionid: unionid.map(Into::into),
    }
}

/// A photo order of `user-1` for the store-level tests, with `photo` as its first attempt.
fn receipt_order(
    id: String,
    photo: server::receipts::Photo,
    now: chrono::DateTime<Utc>,
) -> server::receipts::ReceiptOrder {
    use server::id_hash::IdHasher;
    use server::person::{IdNumber, PersonName};
    use server::receipts::{OrderForm, ReceiptOrder, Region};
    ReceiptOrder::new(
        id,
        "user-1".into(),
        OrderForm {
            spec: "id-card".into(),
            document_zh: "居民身份证".into(),
            region: Region::Guangdong,
            name: PersonName::parse("李四").unwrap(),
            id_number: IdNumber::parse("441900199003070024").unwrap(),
        },
        &IdHasher::new("store-key".into()),
        photo,
        now,
    )
}

/// A save over a stale copy is refused, and a receipt number belongs to one order.
async fn receipt_orders_save_over_their_version_with_unique_numbers(backend: Backend) {
    use server::receipts::{Decision, Photo, ReceiptNo, ReceiptOrder, Saved};

    let s = store(backend).await;
    let now = Utc::now();
    let new_order = |id: &str| {
        let photo = Photo {
            attempt: 1,
            upload: None,
            report: serde_json::json!({}),
            background_whitened: false,
            note: Some("背景不够均匀，未自动换成白色".into()),
        };
        receipt_order(id.into(), photo, now)
    };
    let approve = |order: &mut ReceiptOrder, no: &ReceiptNo| {
        order
            .decide(
                Decision::Approve {
                    no: no.clone(),
                    valid_for: chrono::Duration::days(180),
                },
                "reviewer-1",
                now,
            )
            .unwrap()
    };
    let (mut a, mut b) = (new_order("a"), new_order("b"));
    s.insert_receipt_order(&a).await.unwrap();
    s.insert_receipt_order(&b).await.unwrap();
    assert_eq!(s.review_queue(10).await.unwrap().len(), 2);

    let no = ReceiptNo::generate(&mut rand::rng());
    let stale = a.clone();
    approve(&mut a, &no);
    assert_eq!(s.save_receipt_order(&a, None).await.unwrap(), Saved::Saved);
    let mut late = stale;
    approve(&mut late, &ReceiptNo::generate(&mut rand::rng()));
    assert_eq!(
        s.save_receipt_order(&late, None).await.unwrap(),
        Saved::Stale
    );

    approve(&mut b, &no);
    assert_eq!(
        s.save_receipt_order(&b, None).await.unwrap(),
        Saved::NumberTaken
    );
    assert_eq!(s.receipt_order_by_no(&no).await.unwrap().unwrap().id, "a");
    let stored_b = s.receipt_order("b").await.unwrap().unwrap();
    assert_eq!(stored_b, new_order("b"), "a refused save changes nothing");
    assert_eq!(
        s.review_queue(10)
            .await
            .unwrap()
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
}

/// Lost updates: an erasure read a rejected order, then a resubmission stored a new photo for
/// review; the erasure's delete (over the version it read) is refused, the order read again is
/// kept until it is reviewed, and the new attempt's photo stays. A copy still current is erased
/// with every attempt's photos.
async fn an_erasure_never_deletes_an_order_changed_since_it_read_it(backend: Backend) {
    use server::receipts::{
        erase_order, Decision, NeededUntil, OrderErasure, Photo, RejectReason, Saved,
    };

    let s = store(backend).await;
    let now = Utc::now();
    let photo = |attempt| Photo {
        attempt,
        upload: None,
        report: serde_json::json!({}),
        background_whitened: false,
        note: None,
    };
    let mut order = receipt_order(
        format!("erased-{}", uuid::Uuid::new_v4().simple()),
        photo(1),
        now,
    );
    s.insert_receipt_order(&order).await.unwrap();
    let rejected = Decision::Reject {
        reasons: vec![RejectReason::Other],
        note: Some("请重拍".into()),
    };
    order.decide(rejected, "reviewer-1", now).unwrap();
    assert_eq!(
        s.save_receipt_order(&order, None).await.unwrap(),
        Saved::Saved
    );
    let id = order.id.clone();
    let photos = |attempt| format!("receipt-orders/{id}/{attempt}/original");
    s.blob_put(&photos(1), b"first").await.unwrap();

    let read_by_erasure = order.clone();
    order.resubmit(photo(2), now).unwrap();
    s.blob_put(&photos(2), b"second").await.unwrap();
    assert_eq!(
        s.save_receipt_order(&order, None).await.unwrap(),
        Saved::Saved
    );

    let stale = erase_order(&*s, &*s, read_by_erasure, now).await.unwrap();
    assert_eq!(
        stale,
        OrderErasure::Kept(order.id.clone(), NeededUntil::Reviewed)
    );
    assert_eq!(
        s.receipt_order(&order.id).await.unwrap(),
        Some(order.clone())
    );
    assert_eq!(
        s.blob_get(&photos(2)).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );

    let rejected_again = Decision::Reject {
        reasons: vec![RejectReason::Other],
        note: Some("请再重拍".into()),
    };
    order.decide(rejected_again, "reviewer-1", now).unwrap();
    assert_eq!(
        s.save_receipt_order(&order, None).await.unwrap(),
        Saved::Saved
    );
    let erased = erase_order(&*s, &*s, order.clone(), now).await.unwrap();
    assert_eq!(erased, OrderErasure::Erased { photos: 2 });
    assert_eq!(s.receipt_order(&order.id).await.unwrap(), None);
    assert_eq!(s.review_queue(10).await.unwrap(), Vec::new());
}

/// 客服 conversations: messages in order with who wrote them, the newest conversation first,
/// a person's answer clears "awaiting", the reply is queued with its messages, and the
/// retention cut deletes only conversations whose last message is older.
async fn kf_conversations_keep_their_messages_and_expire(backend: Backend) {
    use server::kf::store::{Author, Exchange, KfMessage};
    use server::notify::store::OutboxState;
    use server::notify::Notification;

    let s = store(backend).await;
    // The stores keep times to the millisecond.
    let t0 = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
        - chrono::Duration::days(10);
    let at = |minutes: i64| t0 + chrono::Duration::minutes(minutes);
    let message = |id: &str, minutes: i64, author: Author, text: &str| KfMessage {
        id: id.into(),
        at: at(minutes),
        author,
        staff_id: (author == Author::Staff).then(|| "admin-7".to_owned()),
        text: text.into(),
    };
    let reply = |key: &str, text: &str, minutes: i64| {
        Notification::customer_service(key.into(), "o-a", text, at(minutes))
    };
    let asked = reply("kf:auto:1", "客服人员会回复您", 0);
    s.record_exchange(&Exchange {
        conversation_id: "c-a".into(),
        openid: "o-a".into(),
        // The user's message and its automatic answer at the same instant keep their order.
        messages: vec![
            message("m1", 0, Author::User, "在吗"),
            message("m2", 0, Author::Auto, "客服人员会回复您"),
        ],
        needs_person: true,
        reply: Some(asked.clone()),
    })
    .await
    .unwrap();
    s.record_exchange(&Exchange {
        conversation_id: "c-b".into(),
        openid: "o-b".into(),
        messages: vec![
            message("m3", 5, Author::User, "回执"),
            message("m4", 5, Author::Auto, "回执办理"),
        ],
        needs_person: false,
        reply: None,
    })
    .await
    .unwrap();
    let listed = s.conversations(10).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c-b", "c-a"], "newest first");
    assert_eq!(
        listed.iter().map(|c| c.awaiting()).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(s.conversations(1).await.unwrap().len(), 1);
    assert_eq!(
        s.outbox_entry("kf", &asked.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        OutboxState::Pending,
        "the reply is queued with the messages"
    );

    let answered = reply("kf:staff:m5", "您好", 20);
    s.record_exchange(&Exchange {
        conversation_id: "c-a".into(),
        openid: "o-a".into(),
        messages: vec![message("m5", 20, Author::Staff, "您好")],
        needs_person: false,
        reply: Some(answered.clone()),
    })
    .await
    .unwrap();
    assert!(s.outbox_entry("kf", &answered.id).await.unwrap().is_some());
    let (summary, messages) = s.conversation("c-a").await.unwrap().unwrap();
    assert!(!summary.awaiting(), "a person answered");
    assert_eq!(summary.openid, "o-a");
    assert_eq!(summary.last_at, at(20));
    assert_eq!(summary.last_user_at, at(0));
    assert_eq!(summary.last_text, "您好");
    assert_eq!(
        messages
            .iter()
            .map(|m| (m.id.as_str(), m.author, m.staff_id.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("m1", Author::User, None),
            ("m2", Author::Auto, None),
            ("m5", Author::Staff, Some("admin-7")),
        ]
    );
    assert_eq!(messages[0].at, at(0));
    assert!(s.conversation("c-none").await.unwrap().is_none());

    // c-b's last message is at 5, c-a's at 20.
    assert_eq!(s.delete_conversations_before(at(5)).await.unwrap(), 0);
    assert_eq!(s.delete_conversations_before(at(6)).await.unwrap(), 1);
    assert!(s.conversation("c-b").await.unwrap().is_none());
    assert_eq!(s.conversations(10).await.unwrap().len(), 1);
    assert_eq!(s.delete_conversations_before(at(21)).await.unwrap(), 1);
    assert!(s.conversations(10).await.unwrap().is_empty());
    assert!(s.conversation("c-a").await.unwrap().is_none());
}

/// Accounts of every role are stored and read back (SQLite's CHECK takes `support`).
async fn admin_accounts_of_every_role(backend: Backend) {
    use server::admin::{create_admin, Role};

    let s = store(backend).await;
    for role in [Role::Reviewer, Role::Staff, Role::Support] {
        let name = format!("{}-1", role.as_str());
        create_admin(s.as_ref(), &name, role, "a-long-password")
            .await
            .unwrap();
        let stored = s.admin_by_username(&name).await.unwrap().unwrap();
        assert_eq!(stored.role, role);
    }
}

/// Accounts are found by username and by id, with their halls; disabling bumps the token
/// epoch, enabling does not, revoking does; an unknown account changes nothing.
async fn admin_accounts_change_atomically(backend: Backend) {
    let store = store(backend).await;
    let staff = create_admin_at(
        store.as_ref(),
        "window-1",
        Role::Staff,
        &["dongcheng", "nancheng"],
        "a-long-password",
    )
    .await
    .unwrap();
    let by_id = store.admin_by_id(&staff.id).await.unwrap().unwrap();
    assert_eq!(by_id, staff);
    assert_eq!(by_id.halls, ["dongcheng", "nancheng"]);
    assert_eq!((by_id.disabled, by_id.token_epoch), (false, 0));
    assert!(store.admin_by_id("no-such-id").await.unwrap().is_none());
    let steps = [
        (AccountChange::Disable, true, 1),
        (AccountChange::Enable, false, 1),
        (AccountChange::RevokeTokens, false, 2),
        (AccountChange::Disable, true, 3),
    ];
    for (change, disabled, epoch) in steps {
        let changed = store
            .change_admin("window-1", change)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (changed.disabled, changed.token_epoch),
            (disabled, epoch),
            "{change:?}"
        );
        assert_eq!(
            store.admin_by_id(&staff.id).await.unwrap().unwrap(),
            changed
        );
    }
    assert!(store
        .change_admin("nobody", AccountChange::Disable)
        .await
        .unwrap()
        .is_none());
    assert!(store.admin_by_username("nobody").await.unwrap().is_none());
}

fn audit_entry(actor: &str, record: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: Utc::now(),
        actor: actor.into(),
        role: "staff".into(),
        action: "POST /api/v1/admin/appointments/{code}/check-in".into(),
        records: vec![record.into()],
        status: 200,
    }
}

/// Entries get increasing numbers and come back newest first, a page below a number at a
/// time, all of them or one actor's, as they were written.
async fn the_audit_log_pages_newest_first(backend: Backend) {
    let store = store(backend).await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        let actor = if i % 2 == 0 { "a" } else { "b" };
        let entry = audit_entry(actor, &format!("r{i}"));
        seqs.push(store.append_audit(&entry).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let records = |entries: &[AuditEntry]| -> Vec<String> {
        entries.iter().map(|e| e.records[0].clone()).collect()
    };
    let all = store.audit_entries(None, None, 10).await.unwrap();
    assert_eq!(records(&all), ["r4", "r3", "r2", "r1", "r0"]);
    assert_eq!(all[0].seq, seqs[4]);
    let expected = AuditEntry {
        seq: seqs[4],
        ..audit_entry("a", "r4")
    };
    assert_eq!(
        (&all[0].actor, &all[0].role, &all[0].action, all[0].status),
        (
            &expected.actor,
            &expected.role,
            &expected.action,
            expected.status
        )
    );
    let page = store.audit_entries(Some(seqs[3]), None, 2).await.unwrap();
    assert_eq!(records(&page), ["r2", "r1"]);
    let of_a = store.audit_entries(None, Some("a"), 10).await.unwrap();
    assert_eq!(records(&of_a), ["r4", "r2", "r0"]);
    let of_a = store
        .audit_entries(Some(seqs[4]), Some("a"), 1)
        .await
        .unwrap();
    assert_eq!(records(&of_a), ["r2"]);
    assert!(store
        .audit_entries(None, Some("c"), 10)
        .await
        .unwrap()
        .is_empty());
}

/// The outbox: an entry is claimed once due (one due when written, one due later), held by
/// its claim until finished or until the lease runs out (then claimed again, and the first
/// holder's late outcome is ignored), waits for its retry, and is never claimed once finished
/// or erased.
async fn outbox_entries_are_claimed_when_due_and_held_by_their_lease(backend: Backend) {
    let s = store(backend).await;
    let now = Utc::now();
    let due_now = confirmation("u1", "a1");
    let mut later = confirmation("u1", "a2");
    later.not_before = now + TimeDelta::hours(1);
    let erased = confirmation("u2", "a3");
    for notification in [&due_now, &later, &erased] {
        assert!(s.enqueue(notification).await.unwrap());
    }
    assert!(!s.enqueue(&due_now).await.unwrap(), "one entry per key");
    s.erase_recipient("u2", None).await.unwrap();
    let lease = TimeDelta::seconds(60);
    let claim = |at: chrono::DateTime<Utc>, owner: &'static str| {
        let s = s.clone();
        async move { s.claim_due(at, at + lease, 10, owner).await.unwrap() }
    };
    let held = |claimed: &[Claimed]| -> Vec<(String, u32)> {
        claimed
            .iter()
            .map(|c| (c.notification.id.clone(), c.attempts))
            .collect()
    };

    let first = claim(now + TimeDelta::seconds(1), "w1").await;
    assert_eq!(held(&first), [(due_now.id.clone(), 1)]);
    assert!(
        claim(now + TimeDelta::seconds(2), "w2").await.is_empty(),
        "held by w1"
    );
    let again = claim(now + TimeDelta::seconds(62), "w2").await;
    assert_eq!(
        held(&again),
        [(due_now.id.clone(), 2)],
        "w1's lease ran out"
    );
    let late = Outcome::Final {
        state: OutboxState::Failed,
        error: "late".into(),
    };
    s.finish(&[(&first[0], late)], "w1").await.unwrap();
    s.finish(&[(&again[0], Outcome::Sent)], "w2").await.unwrap();
    let entry = s
        .outbox_entry("notify", &due_now.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, OutboxState::Sent);

    let at = later.not_before;
    assert!(
        claim(at - TimeDelta::seconds(1), "w1").await.is_empty(),
        "not due yet"
    );
    let claimed = claim(at, "w1").await;
    assert_eq!(held(&claimed), [(later.id.clone(), 1)]);
    let retry = Outcome::Retry {
        at: at + TimeDelta::seconds(30),
        error: "busy".into(),
    };
    s.finish(&[(&claimed[0], retry)], "w1").await.unwrap();
    assert!(
        claim(at + TimeDelta::seconds(10), "w1").await.is_empty(),
        "waits for its retry"
    );
    let retried = claim(at + TimeDelta::seconds(30), "w1").await;
    assert_eq!(held(&retried), [(later.id.clone(), 2)]);
    s.finish(&[(&retried[0], Outcome::Sent)], "w1")
        .await
        .unwrap();

    assert!(
        claim(now + TimeDelta::days(1), "w1").await.is_empty(),
        "all finished or erased"
    );
}

on_every_backend!(
    an_erasure_never_deletes_an_order_changed_since_it_read_it,
    kf_conversations_keep_their_messages_and_expire,
    admin_accounts_of_every_role,
    admin_accounts_change_atomically,
    the_audit_log_pages_newest_first,
    receipt_orders_save_over_their_version_with_unique_numbers,
    kv_roundtrip_and_expiry,
    blobs_under_a_prefix_are_deleted_together,
    set_if_absent_respects_expiry,
    delete_if_eq_only_deletes_the_expected_value,
    counters_count_concurrent_increments_and_expire,
    exactly_one_of_many_racers_gets_the_lock,
    lock_release_and_expiry,
    users_upsert_by_openid,
    outbox_entries_are_claimed_when_due_and_held_by_their_lease,
);

async fn client_id(store: &RedisStore) -> i64 {
    ::redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut store.conn())
        .await
        .unwrap()
}

/// Each single-threaded runtime (an actix worker) soon talks to Redis over its own
/// connection; other runtimes share the one made at start.
#[tokio::test(flavor = "multi_thread")]
async fn each_single_threaded_runtime_gets_its_own_redis_connection() {
    let url = RedisServer::shared().await.url();
    let store = RedisStore::connect(RedisAt::Node(&url), "t-connections")
        .await
        .unwrap();
    let shared = client_id(&store).await;
    assert_eq!(client_id(&store).await, shared, "multi-threaded: shared");
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    assert_eq!(client_id(&store).await, shared, "until its own is up");
                    for _ in 0..200 {
                        let id = client_id(&store).await;
                        if id != shared {
                            assert_eq!(client_id(&store).await, id, "and then that one");
                            return id;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    panic!("no connection of its own after 2 s");
                })
            })
        })
        .collect();
    let own: Vec<i64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_ne!(own[0], own[1], "one connection per thread");
}

/// On the cluster, keys spread over the masters by their hash tag: users and key-value
/// entries, each under a tag of its own, land on every master (and none twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_different_tags_spread_over_the_cluster_masters() {
    let shared = SharedStore::fresh(Backend::RedisCluster).await;
    let SharedStore::RedisCluster { prefix, .. } = &shared else {
        unreachable!("a cluster store")
    };
    let s = shared.open().await;
    for n in 0..30 {
        s.upsert_user(&session(&format!("spread-{n}"), None), Utc::now())
            .await
            .unwrap();
        s.kv_set(&format!("spread-{n}"), "v", Duration::from_secs(60))
            .await
            .unwrap();
    }
    let mut per_master = Vec::new();
    for url in RedisCluster::shared().await.node_urls() {
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        per_master.push(
            tests::redis_server::keys_under(&mut conn, prefix)
                .await
                .len(),
        );
    }
    assert_eq!(per_master.iter().sum::<usize>(), 60, "{per_master:?}");
    assert!(
        per_master.iter().all(|keys| *keys > 0),
        "every master holds some: {per_master:?}"
    );
}
