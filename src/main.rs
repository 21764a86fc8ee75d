//! `latency`: parse the command line, start logging, run the daemon, map errors to exit codes
//! (2: bad configuration, 1: could not start).

use std::process::ExitCode;

use latency::config::{self, Command};
use latency::daemon::{self, VERSION};
use latency::logging;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|arg| arg.into_string()).collect();
    let Ok(args) = args else {
        eprintln!("latency: arguments must be valid UTF-8; see latency --help");
        return ExitCode::from(2);
    };
    let command = match config::parse(args, |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("latency: {err}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => print!("{}", config::USAGE),
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
