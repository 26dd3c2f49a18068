//! The WeChat server API: our client for it, WeChat's own rules (keyword values, access
//! tokens), and the simulator that stands in for it in development and tests.

mod client;
pub mod keywords;
pub mod push;
pub mod simulator;
pub mod token;

pub use client::{
    install_tls_provider, AccessToken, AccountTemplate, CustomMessage, PhoneInfo, SubscribeMessage,
    WeChatClient, WeChatError, WeChatSession,
};
