//! Flags and environment (the environment passed in as a function, as the daemon passes its
//! own): never a panic; a rejection is one line however the value was made (no control
//! character of the user's gets through); an accepted configuration keeps every documented
//! limit.
#![no_main]

use std::collections::HashSet;

use latency::config::{
    self, Command, MAX_RESOLVE_EVERY, MAX_TIMEOUT, MIN_INTERVAL, MIN_RESOLVE_EVERY, MIN_TIMEOUT,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Arguments separated by NUL (which no argument can hold), then after a line of `--` the
    // environment as NAME=VALUE lines. A bare name in the environment is LATENCY_ + it.
    let (args, env) = text.split_once("\n--\n").unwrap_or((text, ""));
    let args: Vec<&str> = if args.is_empty() { Vec::new() } else { args.split('\0').collect() };
    let env: Vec<(String, &str)> = env
        .split('\n')
        .filter_map(|entry| entry.split_once('='))
        .map(|(name, value)| {
            let name = if name.starts_with("LATENCY_") || name == "STATE_DIRECTORY" {
                name.to_string()
            } else {
                format!("LATENCY_{name}")
            };
            (name, value)
        })
        .collect();
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, value)| value.to_string());
    match config::parse(args.iter().copied(), lookup) {
        Ok(Command::Run(config)) => {
            assert!(config.interval >= MIN_INTERVAL);
            assert!(config.timeout >= MIN_TIMEOUT && config.timeout <= MAX_TIMEOUT);
            assert!(config.timeout < config.interval);
            assert!(config.resolve_every >= MIN_RESOLVE_EVERY && config.resolve_every <= MAX_RESOLVE_EVERY);
            let names: HashSet<&str> = config.targets.iter().map(|target| &*target.name).collect();
            assert_eq!(names.len(), config.targets.len(), "each target's name once");
            assert!(config.results.file_name().is_some());
        }
        Ok(Command::Help | Command::Version) => {}
        Err(err) => {
            let message = err.to_string();
            assert!(!message.chars().any(char::is_control), "{message:?}");
        }
    }
});
