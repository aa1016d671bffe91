//! `docs/openapi.json` documents exactly what is served: the same (method, path) pairs as
//! the router's route table, every path parameter declared, security on every route that
//! needs a token; and every documented route answers on a live server (401 without a
//! token, not 404 or 405), sandbox routes only in sandbox mode.

mod http_support;

use std::collections::BTreeSet;

use cardcore_server::http::{route_table, Audience, RouteSpec};
use http_support::*;
use serde_json::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let text = std::fs::read_to_string(path).expect("docs/openapi.json is checked in");
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

fn served(table: &[RouteSpec]) -> BTreeSet<(String, String)> {
    table
        .iter()
        .map(|s| (s.method.to_owned(), s.path.to_owned()))
        .collect()
}

fn operation<'a>(doc: &'a Value, spec: &RouteSpec) -> &'a Value {
    &doc["paths"][spec.path][spec.method.to_ascii_lowercase()]
}

#[test]
fn the_document_lists_exactly_the_served_routes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    let served = served(&route_table(true));
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

#[test]
fn every_operation_declares_its_parameters_security_and_audience() {
    let doc = document();
    for spec in route_table(true) {
        let op = operation(&doc, &spec);
        let name = format!("{} {}", spec.method, spec.path);
        assert!(op["operationId"].is_string(), "{name}: operationId");
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = spec
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(declared, in_path, "{name}: path parameters");
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, spec.audience != Audience::Open, "{name}: security");
        let audience = match spec.audience {
            Audience::Open => "open",
            Audience::Profile => "profile",
            Audience::Application => "application",
            Audience::Sandbox => "sandbox",
        };
        assert_eq!(op["x-cardcore-audience"], audience, "{name}: audience");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{name}"
        );
    }
}

/// A path with plausible values in place of its parameters.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{profileId}" => "1",
            "{cardToken}" => "ca0c8154-1e14-4464-a1ce-dcea7dc3de52",
            "{clientId}" => CLIENT_ID,
            "{granularity}" => "daily",
            s if s.starts_with('{') => "7",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served_in_its_mode() {
    for sandbox in [true, false] {
        let server = TestServer::start(sandbox).await;
        for spec in route_table(true) {
            let reply = server
                .call(spec.method, &concrete(spec.path), None, None)
                .await;
            let expected = match spec.audience {
                Audience::Open => 200,
                Audience::Sandbox if !sandbox => 404,
                _ => 401,
            };
            assert_eq!(
                reply.status, expected,
                "{} {} (sandbox {sandbox}): {}",
                spec.method, spec.path, reply.text
            );
            if expected != 200 {
                assert_eq!(reply.json()["status"], expected, "a JSON error body");
            }
        }
        server.stop().await;
    }
}
