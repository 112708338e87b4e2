//! Logging: JSON lines through `tracing`, as Lambda's JSON log format expects.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Install the log subscriber: JSON unless `AWS_LAMBDA_LOG_FORMAT` is `Text`; the level
/// from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO. Safe to call twice (the
/// second call does nothing).
pub fn init_tracing(lookup: &dyn Fn(&str) -> Option<String>) {
    let level = lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy("");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Lambda stamps every line itself.
        .without_time();
    let text = lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
    let _ = if text {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
