//! The end-to-end suite as one test binary (one link of the server instead of one per file),
//! a module per capability. Each test runs on SQLite and on Redis where both apply:
//! `cargo test -p tests --test api booking::` runs one capability's tests.

mod admin;
mod at_rest;
mod booking;
mod booking_steps;
mod booking_store;
mod budgets;
mod consent;
mod differential;
mod durability;
mod erasure;
mod health;
mod kf;
mod layering;
mod migration;
mod notify;
mod operations;
mod oracles;
mod phone;
mod receipts;
mod retention;
mod security;
mod store;
mod template_check;
mod wechat;
mod wechat_fidelity;
