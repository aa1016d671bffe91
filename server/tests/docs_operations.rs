//! `docs/operations.md` against the code: its configuration example names every setting
//! there is (and nothing else), and its metrics table every metric `/metrics` renders and
//! every reason a connection is closed for. A setting or metric added without its line in
//! the guide fails here.

mod http_support;

use std::collections::BTreeSet;

use cardcore_server::metrics::{CloseReason, Refusal};
use cardcore_server::Config;
use http_support::TestServer;

const GUIDE: &str = include_str!("../../docs/operations.md");

#[test]
fn the_configuration_example_names_every_setting_and_parses() {
    let example = configuration_example();
    let config = Config::from_toml(example).expect("the example parses");
    config.validate().expect("the example is valid");
    let documented = toml_paths(&example.parse::<toml::Table>().unwrap());
    let settings = debug_field_paths(&format!("{:?}", Config::default()));
    let missing: Vec<&String> = settings.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "settings missing from the example: {missing:?}"
    );
    assert!(settings.contains("iso.frame_timeout_s"), "{settings:?}");
    assert!(settings.contains("http.max_connections_per_peer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_table_names_every_metric_and_reason() {
    let server = TestServer::start(true).await;
    let text = server.service.render_prometheus();
    server.stop().await;
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(names.len() > 20, "{names:?}");
    let missing: Vec<&&str> = names
        .iter()
        .filter(|name| !GUIDE.contains(&format!("`{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from the guide: {missing:?}"
    );
    let reasons = CloseReason::ALL.iter().map(|r| r.as_str());
    let refusals = Refusal::ALL.iter().map(|r| r.as_str());
    let missing: Vec<&str> = reasons
        .chain(refusals)
        .filter(|reason| !GUIDE.contains(&format!("`{reason}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "reasons missing from the guide: {missing:?}"
    );
}

/// The TOML block of the "Configuration" section.
fn configuration_example() -> &'static str {
    let section = &GUIDE[GUIDE
        .find("## Configuration")
        .expect("a Configuration section")..];
    let start = section.find("```toml\n").expect("a TOML block") + "```toml\n".len();
    let end = section[start..].find("```").expect("the block's end");
    &section[start..start + end]
}

/// `table.key` for every key, and `table` for every table (an array of tables counts once).
fn toml_paths(table: &toml::Table) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (key, value) in table {
        paths.insert(key.clone());
        let nested = match value {
            toml::Value::Table(t) => Some(t),
            toml::Value::Array(items) => items.first().and_then(toml::Value::as_table),
            _ => None,
        };
        if let Some(nested) = nested {
            for path in toml_paths(nested) {
                paths.insert(format!("{key}.{path}"));
            }
        }
    }
    paths
}

/// The field paths of a `#[derive(Debug)]` rendering: `Config { a: 1, iso: IsoSettings { b:
/// 2 } }` gives `a`, `iso` and `iso.b`. The configuration has no way to list its fields
/// otherwise, and its `Debug` is derived, so every field shows (secrets as `None` here).
fn debug_field_paths(debug: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    // The field each open brace belongs to ("" for the outermost struct).
    let mut open: Vec<String> = Vec::new();
    let (mut word, mut last_field) = (String::new(), None::<String>);
    let mut chars = debug.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // Skip a string value (a path, an address), escapes included.
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ':' if !word.is_empty() => {
                let prefix: Vec<&str> = open
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                let path = prefix
                    .iter()
                    .chain([&word.as_str()])
                    .copied()
                    .collect::<Vec<_>>()
                    .join(".");
                paths.insert(path);
                last_field = Some(std::mem::take(&mut word));
            }
            '{' => open.push(last_field.take().unwrap_or_default()),
            '}' => {
                open.pop();
            }
            c if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
            _ => {
                word.clear();
                if c == ',' {
                    last_field = None;
                }
            }
        }
    }
    paths
}
