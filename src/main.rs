//! `latency`: parse the command line, start logging, run the daemon (or `latency doctor`), map
//! errors to exit codes (2: bad configuration, 1: could not start, or doctor found a problem).

use std::process::ExitCode;

use latency::config::{self, Command};
use latency::daemon::{self, VERSION};
use latency::doctor;
use latency::logging;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|arg| arg.into_string()).collect();
    let Ok(args) = args else {
        eprintln!("latency: arguments must be valid UTF-8; see latency --help");
        return ExitCode::from(2);
    };
    let unreadable = std::env::vars_os().find(|(name, value)| {
        name.to_str().is_some_and(|name| name.starts_with("LATENCY_")) && value.to_str().is_none()
    });
    if let Some((name, _)) = unreadable {
        eprintln!("latency: {}: not valid UTF-8; see latency --help", name.to_string_lossy());
        return ExitCode::from(2);
    }
    if args.first().is_some_and(|arg| arg == "doctor") {
        return ExitCode::from(doctor::system::run(&args[1..]));
    }
    let command = match config::parse(args, |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("latency: {err}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => print!("{}", config::usage()),
        Command::Version => println!("latency {VERSION}"),
        Command::Run(config) => {
            logging::init();
            if let Err(err) = daemon::run(config) {
                log::error!("{err}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
