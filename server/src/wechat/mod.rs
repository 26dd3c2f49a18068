//! The WeChat server API: our client for it, and the simulator that stands in for it in
//! development and tests.

mod client;
pub mod simulator;

pub use client::{
    install_tls_provider, AccessToken, SubscribeMessage, WeChatClient, WeChatError, WeChatSession,
};
