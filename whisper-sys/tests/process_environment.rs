//! `set_process_environment`: sets what the user left unset and keeps every
//! choice the user made. One test in its own binary, so no other test thread
//! reads or writes the environment meanwhile.

use std::env;

fn var(name: &str) -> Option<String> {
    env::var(name).ok()
}

#[test]
fn unset_variables_get_the_defaults_and_set_ones_are_kept() {
    for name in ["GGML_NO_BACKTRACE", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"] {
        env::remove_var(name);
    }
    whisper_sys::set_process_environment();
    assert_eq!(var("GGML_NO_BACKTRACE").as_deref(), Some("1"));
    assert_eq!(var("GOMP_SPINCOUNT").as_deref(), Some("1000"));

    // The user's own values win, and a wait policy rules out the spin count.
    env::set_var("GGML_NO_BACKTRACE", "0");
    env::remove_var("GOMP_SPINCOUNT");
    env::set_var("OMP_WAIT_POLICY", "passive");
    whisper_sys::set_process_environment();
    assert_eq!(var("GGML_NO_BACKTRACE").as_deref(), Some("0"));
    assert_eq!(var("GOMP_SPINCOUNT"), None);

    env::remove_var("OMP_WAIT_POLICY");
    env::set_var("GOMP_SPINCOUNT", "300000");
    whisper_sys::set_process_environment();
    assert_eq!(var("GOMP_SPINCOUNT").as_deref(), Some("300000"));
}
