//! The process logger: `env_logger` filtered by `RUST_LOG` (default `info`),
//! each line tagged with the request id of the work that wrote it.

use std::io::Write;

use crate::engine::log_context;

/// Installs the logger (once; later calls do nothing).
pub fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            let timestamp = out.timestamp_millis();
            let level = record.level();
            let target = record.target();
            match log_context::current() {
                Some(id) => writeln!(
                    out,
                    "[{timestamp} {level:<5} {target}] [{id}] {}",
                    record.args()
                ),
                None => writeln!(out, "[{timestamp} {level:<5} {target}] {}", record.args()),
            }
        })
        .try_init();
}
