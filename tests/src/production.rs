//! Production-mode apps for the tests: everything production requires, against a simulator
//! standing in for api.weixin.qq.com.

use server::wechat::simulator::{self, RunningSimulator};

use crate::{SharedStore, TestApp};

/// Everything production needs, against `wechat` standing in for api.weixin.qq.com.
pub fn production_vars(wechat: &RunningSimulator) -> Vec<(String, String)> {
    [
        ("BANZHENG_MODE", "production".to_owned()),
        ("BANZHENG_WECHAT_APPID", simulator::APPID.to_owned()),
        ("BANZHENG_WECHAT_SECRET", simulator::SECRET.to_owned()),
        ("BANZHENG_WECHAT_API_BASE", wechat.api_base()),
        (
            "BANZHENG_JWT_SECRET",
            "a-production-jwt-secret-of-enough-length".to_owned(),
        ),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "a-production-id-hash-key-of-enough-length".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A production app on `backend`, with `extra` settings, and the WeChat it talks to.
pub async fn production_app(
    backend: crate::Backend,
    extra: &[(&str, &str)],
) -> (TestApp, RunningSimulator) {
    let wechat = simulator::spawn().unwrap();
    let mut vars = production_vars(&wechat);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_on(SharedStore::fresh(backend).await, &vars).await;
    (app, wechat)
}
