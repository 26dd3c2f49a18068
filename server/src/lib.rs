//! Banzheng (办证): the API behind a WeChat mini-program for ID-card errands in Dongguan.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod booking;
pub mod clock;
pub mod config;
pub mod erasure;
pub mod error;
mod health;
pub mod id_hash;
pub mod kf;
pub mod metrics;
pub mod notify;
pub mod person;
pub mod receipts;
pub mod retention;
pub mod routing;
pub mod startup;
pub mod store;
pub mod telemetry;
mod web;
pub mod wechat;

pub use startup::{build_app, Application, Capabilities};
