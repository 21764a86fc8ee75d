//! `latency --help`, the man page, `/etc/default/latency` and the README's configuration table
//! each state the flags, their variables, defaults and limits. `config::SETTINGS` is the one
//! source: `--help` is written from it, and this test fails when a document leaves a setting
//! out, names one the daemon does not have, or states a default or a limit differently.

use std::collections::BTreeSet;

use latency::config::{
    self, FAMILY, INTERVAL, LISTEN, RESOLVE_EVERY, RESULTS, SETTINGS, Setting, TARGET, TIMEOUT, duration,
};

const README: &str = include_str!("../README.md");
const MAN_PAGE: &str = include_str!("../debian/latency.8");
const DEFAULT_FILE: &str = include_str!("../debian/latency.default");

/// Flags every document may name besides the settings.
const OTHER_FLAGS: [&str; 2] = ["--help", "--version"];

/// What one document says about one setting.
#[derive(Debug)]
struct Entry {
    env: String,
    /// `--interval DUR`, where the document names the flag.
    flag: Option<String>,
    /// The value written for it (the commented-out line of the default file).
    value: Option<String>,
    /// The prose that states its default and limits.
    text: String,
}

#[test]
fn help_states_every_setting_as_the_table_does() {
    let help = config::usage();
    assert_agrees("--help", &help, &help_entries(&help));
}

#[test]
fn the_man_page_states_every_setting_as_the_table_does() {
    let text = MAN_PAGE.replace("\\-", "-");
    let mut problems = problems("latency.8", &text, &man_entries(MAN_PAGE));
    let synopsis = roff_text(&section(MAN_PAGE, ".SH SYNOPSIS").join("\n"));
    for setting in SETTINGS {
        if !synopsis.contains(&format!("[{} {}]", setting.flag, setting.placeholder)) {
            problems.push(format!("latency.8: SYNOPSIS lacks [{} {}]", setting.flag, setting.placeholder));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_default_file_states_every_setting_as_the_table_does() {
    assert_agrees("latency.default", DEFAULT_FILE, &default_file_entries(DEFAULT_FILE));
}

#[test]
fn the_readme_table_states_every_setting_as_the_table_does() {
    let configuration = section(README, "## Configuration").join("\n");
    assert_agrees("README.md", &configuration, &readme_entries(&configuration));
}

/// The checks themselves catch each kind of drift, planted in a table written from `SETTINGS`.
#[test]
fn a_planted_disagreement_is_found() {
    let table: String = SETTINGS
        .iter()
        .map(|s| {
            let limits: Vec<String> = s.limits.iter().map(ToString::to_string).collect();
            let default = s.documented_default();
            format!("| `{} {}` | `{}` | {default} | {} |\n", s.flag, s.placeholder, s.env, limits.join(", "))
        })
        .collect();
    assert_eq!(problems("table", &table, &readme_entries(&table)), Vec::<String>::new());
    let interval_default = format!("| {} |", INTERVAL.documented_default());
    let timeout_limit = format!("{}, ", TIMEOUT.limits[0]);
    let listen = format!("`{}`", LISTEN.env);
    let results = format!("`{} {}`", RESULTS.flag, RESULTS.placeholder);
    let target = format!("`{} {}`", TARGET.flag, TARGET.placeholder);
    let family_row = table.lines().find(|row| row.contains(FAMILY.env)).map(|row| format!("{row}\n"));
    let resolve_limit = format!(", {} |", RESOLVE_EVERY.limits[1]);
    let cases = [
        (interval_default.as_str(), "| 7h |", "default"),
        (timeout_limit.as_str(), "", "limits"),
        (listen.as_str(), "`LATENCY_LISTEN_ADDR`", "not a setting"),
        (results.as_str(), "`--results FILE`", "flag"),
        (target.as_str(), "`--target HOST`", "flag"),
        (family_row.as_deref().unwrap_or("no family row"), "", "LATENCY_FAMILY is stated 0 times"),
        (resolve_limit.as_str(), ", at most 12h |", "limits"),
    ];
    for (from, to, complaint) in cases {
        assert!(table.contains(from), "{from}");
        let changed = table.replacen(from, to, 1);
        let found = problems("table", &changed, &readme_entries(&changed));
        assert!(found.iter().any(|p| p.contains(complaint)), "{from} → {to}: {found:?}");
    }
}

fn assert_agrees(document: &str, text: &str, entries: &[Entry]) {
    let problems = problems(document, text, entries);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every way `entries` (and the rest of `text`) differ from `SETTINGS`.
fn problems(document: &str, text: &str, entries: &[Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in entries {
        if !SETTINGS.iter().any(|s| s.env == entry.env) {
            problems.push(format!("{document}: {} is not a setting of the daemon", entry.env));
        }
    }
    for setting in SETTINGS {
        let found: Vec<&Entry> = entries.iter().filter(|e| e.env == setting.env).collect();
        let [entry] = found[..] else {
            problems.push(format!("{document}: {} is stated {} times, not once", setting.env, found.len()));
            continue;
        };
        problems.extend(disagreements(setting, entry).into_iter().map(|p| format!("{document}: {p}")));
    }
    let known =
        |name: &str| SETTINGS.iter().any(|s| s.flag == name || s.env == name) || OTHER_FLAGS.contains(&name);
    for name in words(text, "--").into_iter().chain(words(text, "LATENCY_")) {
        if !known(&name) {
            problems.push(format!("{document}: names {name}, which is not a setting of the daemon"));
        }
    }
    problems
}

fn disagreements(setting: &Setting, entry: &Entry) -> Vec<String> {
    let mut problems = Vec::new();
    let env = setting.env;
    let flag = format!("{} {}", setting.flag, setting.placeholder);
    if let Some(stated) = &entry.flag
        && *stated != flag
    {
        problems.push(format!("{env}: flag is '{stated}', want '{flag}'"));
    }
    let default = setting.documented_default();
    match stated_defaults(&entry.text)[..] {
        [ref stated] if *stated == default => {}
        ref stated => problems.push(format!("{env}: default is {stated:?}, want ['{default}']")),
    }
    if let Some(value) = &entry.value {
        let want = (setting.default)().unwrap_or_default();
        if *value != want {
            problems.push(format!("{env}: value written is '{value}', want '{want}'"));
        }
    }
    let want: BTreeSet<String> = setting.limits.iter().map(ToString::to_string).collect();
    let stated = stated_limits(&entry.text);
    if stated != want {
        problems.push(format!("{env}: limits are {stated:?}, want {want:?}"));
    }
    problems
}

/// What follows each `Default: ` up to the end of its sentence.
fn stated_defaults(text: &str) -> Vec<String> {
    text.match_indices("Default: ")
        .map(|(at, marker)| {
            let rest = &text[at + marker.len()..];
            let end = rest
                .char_indices()
                .find(|&(i, c)| c == '.' && rest[i + 1..].chars().next().is_none_or(char::is_whitespace))
                .map_or(rest.len(), |(i, _)| i);
            rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// Every "at least DUR", "at most DUR", "at least N connection" and "shorter than the interval"
/// in `text`.
fn stated_limits(text: &str) -> BTreeSet<String> {
    let text = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let mut limits = BTreeSet::new();
    for bound in ["at least ", "at most "] {
        for (at, _) in text.match_indices(bound) {
            let rest = &text[at + bound.len()..];
            let value: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
            if duration::parse(&value).is_ok() {
                limits.insert(format!("{bound}{value}"));
            } else if value.parse::<usize>().is_ok() && rest[value.len()..].starts_with(" connection") {
                limits.insert(format!("{bound}{value} connection"));
            }
        }
    }
    if text.contains("shorter than the interval") {
        limits.insert("shorter than the interval".into());
    }
    limits
}

/// Every word in `text` that starts with `prefix` and a letter, then letters, digits, `_` or `-`.
fn words(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter(|&(at, _)| !text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let tail: String =
                rest.chars().take_while(|&c| c.is_ascii_alphanumeric() || c == '_' || c == '-').collect();
            format!("{prefix}{tail}")
        })
        .filter(|word| word[prefix.len()..].starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect()
}

/// `  --flag PLACEHOLDER   ENV` and the indented lines below it.
fn help_entries(help: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in help.lines() {
        if let Some(heading) = line.strip_prefix("  --") {
            let words: Vec<&str> = heading.split_whitespace().collect();
            if let [flag, placeholder, env] = words[..] {
                let flag = Some(format!("--{flag} {placeholder}"));
                entries.push(Entry { env: env.into(), flag, value: None, text: String::new() });
                continue;
            }
        }
        match entries.last_mut() {
            Some(entry) if line.starts_with("      ") => entry.text += &format!("{line}\n"),
            _ => {}
        }
    }
    entries
}

/// The rows of the configuration table: `| flag | variable | default | meaning |`.
fn readme_entries(configuration: &str) -> Vec<Entry> {
    configuration
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .map(|line| {
            let cells: Vec<String> =
                line.trim_matches('|').split(" | ").map(|c| c.trim().replace('`', "")).collect();
            let cell = |i: usize| cells.get(i).cloned().unwrap_or_default();
            Entry {
                env: cell(1),
                flag: Some(cell(0)),
                value: None,
                text: format!("Default: {}. {}", cell(2), cell(3)),
            }
        })
        .collect()
}

/// The `.TP` entries of OPTIONS that name a variable (`Variable: LATENCY_X.`).
fn man_entries(man: &str) -> Vec<Entry> {
    let options = section(man, ".SH OPTIONS");
    options
        .split(|line| *line == ".TP")
        .skip(1)
        .filter_map(|item| {
            let (tag, body) = item.split_first()?;
            let text = roff_text(&body.join("\n"));
            let env =
                text.split("Variable: ").nth(1)?.split(|c: char| c == '.' || c.is_whitespace()).next()?;
            Some(Entry { env: env.into(), flag: Some(roff_text(tag)), value: None, text: text.clone() })
        })
        .collect()
}

/// Each block of comments that ends in a `#LATENCY_X=value` line.
fn default_file_entries(file: &str) -> Vec<Entry> {
    file.split("\n\n")
        .filter_map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            let (last, comments) = lines.split_last()?;
            let (env, value) = last.strip_prefix('#')?.split_once('=')?;
            let text =
                comments.iter().map(|line| line.trim_start_matches('#').trim()).collect::<Vec<_>>().join(" ");
            env.starts_with("LATENCY_").then(|| Entry {
                env: env.into(),
                flag: None,
                value: Some(value.into()),
                text,
            })
        })
        .collect()
}

/// The lines from `heading` to the next heading of the same kind.
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let kind = heading.split_whitespace().next().unwrap_or(heading);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|line| *line == heading).unwrap_or_else(|| panic!("no {heading}"));
    lines[start + 1..]
        .iter()
        .take_while(|line| line.split_whitespace().next() != Some(kind))
        .copied()
        .collect()
}

/// The text a reader sees in a few lines of man(7) source: font macros joined (`.BR a b`
/// alternates fonts with no space between), escapes replaced, other requests dropped.
fn roff_text(roff: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for line in roff.lines() {
        let line =
            line.replace("\\-", "-").replace("\\(lq", "\"").replace("\\(rq", "\"").replace("\\(aq", "'");
        let Some(request) = line.strip_prefix('.') else {
            words.push(line);
            continue;
        };
        let (name, args) = request.split_once(' ').unwrap_or((request, ""));
        let args = roff_args(args);
        match name {
            "B" | "I" => words.push(args.join(" ")),
            "BR" | "RB" | "BI" | "IB" | "IR" | "RI" => words.push(args.concat()),
            _ => {}
        }
    }
    words.join(" ")
}

/// A request's arguments: split at spaces, except inside double quotes.
fn roff_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
