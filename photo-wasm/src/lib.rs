//! The photo pre-check: one pure-Rust core, used natively by the server and as WebAssembly on the phone.
