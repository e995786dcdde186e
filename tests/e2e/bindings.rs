//! The checked-in `whisper-sys/src/bindings.rs` equals what bindgen makes from the
//! pinned headers (this package's build script is the workspace's `build.rs`).

#[test]
fn checked_in_bindings_match_the_pinned_headers() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/bindings.rs"));
    let checked_in = include_str!("../../whisper-sys/src/bindings.rs");
    assert!(
        generated == checked_in,
        "whisper-sys/src/bindings.rs is stale: run scripts/regen-bindings.sh"
    );
}
