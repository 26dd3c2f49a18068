//! The WeChat server API: our client for it, and the simulator that stands in for it in
//! development and tests.
