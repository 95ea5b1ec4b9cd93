//! The admin API as an attacker would try it: every way of not quite sending the token, plugin
//! names meant to escape the plugins directory, and uploads that are not components. Each
//! refusal is checked to have changed nothing: the plugins directory holds the same files (no
//! temporary ones), the admin view lists the same versions, and the pipeline still answers
//! with version 1 of `fixture-hostile`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sluice_e2e::artifacts::{install_plugin, plugin_path};
use sluice_e2e::host::{HostSpec, SluiceHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "admin-token-5d1e88";
const PLUGIN: &str = "fixture-hostile";

/// A host serving `/v1/rows` through `fixture-hostile` 1.0.0, from a plugins directory of its
/// own, with the admin token set.
async fn start_host(extra_config: &str) -> (SluiceHost, tempfile::TempDir) {
    let plugins = tempfile::tempdir().expect("plugins dir");
    install_plugin(plugins.path(), &plugin_path(&format!("fixtures/{PLUGIN}")), PLUGIN);
    // `fail-before-v2`: version 1 answers 400 to every record, versions 2 and later 202.
    let pipeline = format!(
        "name = \"rows\"\n[source]\nkind = \"http\"\npath = \"/v1/rows\"\n\
         [[steps]]\nplugin = \"{PLUGIN}\"\n[steps.config]\nbehavior = \"fail-before-v2\"\n"
    );
    let host = SluiceHost::start_with(HostSpec {
        extra_config,
        pipelines: &[("rows", pipeline)],
        env: &[("SLUICE_ADMIN_TOKEN", TOKEN.to_owned())],
        plugins_dir: Some(plugins.path()),
    })
    .await;
    (host, plugins)
}

/// Version 2 of the plugin: a well-formed upload, so a refusal cannot be blamed on the body.
fn version_2() -> Vec<u8> {
    std::fs::read(plugin_path(&format!("fixtures/{PLUGIN}-v2"))).expect("read version 2")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("admin request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Sends `method target` byte for byte with the right token, as `curl --path-as-is` would:
/// an HTTP client library resolves `..` and `%2e%2e` before sending.
async fn send_raw(host: &SluiceHost, method: &str, target: &str) -> (u16, Value) {
    let address = host.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").and_then(|(_, body)| serde_json::from_str(body).ok());
    (status, body.unwrap_or(Value::Null))
}

/// Asserts an error answer: `status`, and a JSON body `{error, reason, ...}` with `error`.
fn assert_refused(what: &str, (status, body): &(u16, Value), expected: (u16, &str)) {
    assert_eq!((*status, body["error"].as_str()), (expected.0, Some(expected.1)), "{what}: {body}");
    assert!(body["reason"].as_str().is_some_and(|reason| !reason.is_empty()), "{what}: {body}");
}

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Untouched {
    /// Every file in the plugins directory, hidden ones included, with its bytes.
    files: Vec<(String, Vec<u8>)>,
    /// Name, version and content hash of every loaded plugin.
    plugins: Value,
}

impl Untouched {
    async fn now(host: &SluiceHost, plugins_dir: &Path) -> Self {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(plugins_dir)
            .expect("list plugins dir")
            .map(|entry| {
                let path = entry.expect("plugins dir entry").path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                (name, std::fs::read(&path).expect("read plugin file"))
            })
            .collect();
        files.sort();
        let url = format!("{}/v1/admin/plugins", host.url);
        let (status, body) = send(reqwest::Client::new().get(url).bearer_auth(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        let plugins = body["plugins"]
            .as_array()
            .map(|list| {
                let view = |p: &Value| json!([p["name"], p["version"], p["content_hash"]]);
                list.iter().map(view).collect()
            })
            .unwrap_or_default();
        Untouched { files, plugins }
    }

    /// Asserts nothing changed since `self` was taken, and version 1 still answers.
    async fn assert_still(&self, host: &SluiceHost, plugins_dir: &Path, after: &str) {
        assert_eq!(&Untouched::now(host, plugins_dir).await, self, "after {after}");
        let rows = reqwest::Client::new().post(format!("{}/v1/rows", host.url)).json(&json!({"id": "a"}));
        let status = rows.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        assert_eq!(status, 400, "after {after}, version 1 must still answer (it refuses every record)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_not_sending_the_token_gets_the_same_401_on_every_admin_route() {
    let (host, plugins) = start_host("").await;
    let before = Untouched::now(&host, plugins.path()).await;
    let client = reqwest::Client::new();
    let almost = &TOKEN[..TOKEN.len() - 1];
    let basic = BASE64.encode(format!("admin:{TOKEN}"));
    // (what, query string, Authorization headers)
    let attempts: Vec<(&str, String, Vec<String>)> = vec![
        ("no token", String::new(), vec![]),
        ("a wrong token", String::new(), vec!["Bearer not-the-token".into()]),
        ("the token cut short", String::new(), vec![format!("Bearer {almost}")]),
        ("the token with more after it", String::new(), vec![format!("Bearer {TOKEN}x")]),
        ("?token=", format!("?token={TOKEN}"), vec![]),
        ("?access_token=", format!("?access_token={TOKEN}"), vec![]),
        ("?token= with a trailing newline", format!("?token={TOKEN}%0A"), vec![]),
        ("the token as Basic credentials", String::new(), vec![format!("Basic {basic}")]),
        ("the bare token after Basic", String::new(), vec![format!("Basic {TOKEN}")]),
        ("the token without a scheme", String::new(), vec![TOKEN.into()]),
        ("Bearer without a token", String::new(), vec!["Bearer".into()]),
        ("Bearer and only spaces", String::new(), vec!["Bearer    ".into()]),
        ("two spaces before the token", String::new(), vec![format!("Bearer  {TOKEN}")]),
        // A raw newline never reaches the check: it ends the header line, and the HTTP parser
        // trims trailing whitespace. Encoded is how a newline can arrive.
        ("the token with an encoded newline", String::new(), vec![format!("Bearer {TOKEN}%0A")]),
        (
            "a wrong header, then the right one",
            String::new(),
            vec!["Bearer x".into(), format!("Bearer {TOKEN}")],
        ),
        (
            "the right header, then a wrong one",
            String::new(),
            vec![format!("Bearer {TOKEN}"), "Bearer x".into()],
        ),
    ];

    let url = |path: &str, query: &str| format!("{}/v1/admin/{path}{query}", host.url);
    let mut answers = Vec::new();
    for (what, query, authorizations) in &attempts {
        let routes = [
            ("GET plugins", client.get(url("plugins", query))),
            ("PUT a plugin", client.put(url(&format!("plugins/{PLUGIN}"), query)).body(version_2())),
            ("POST reload", client.post(url("pipelines/reload", query))),
            ("GET a shadow", client.get(url(&format!("plugins/{PLUGIN}/shadow"), query))),
            ("PUT a shadow", client.put(url(&format!("plugins/{PLUGIN}/shadow"), query)).body(version_2())),
            ("DELETE a shadow", client.delete(url(&format!("plugins/{PLUGIN}/shadow"), query))),
            ("POST a promotion", client.post(url(&format!("plugins/{PLUGIN}/shadow/promote"), query))),
            ("GET a canary", client.get(url(&format!("plugins/{PLUGIN}/canary"), query))),
            ("PUT a canary", client.put(url(&format!("plugins/{PLUGIN}/canary"), query)).body(version_2())),
            ("DELETE a canary", client.delete(url(&format!("plugins/{PLUGIN}/canary"), query))),
            ("POST a canary promotion", client.post(url(&format!("plugins/{PLUGIN}/canary/promote"), query))),
        ];
        for (route, mut request) in routes {
            for authorization in authorizations {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            answers.push((format!("{what}, {route}"), send(request).await));
        }
    }

    let (_, first) = &answers[0];
    assert_refused("no token", first, (401, "unauthorized"));
    assert_eq!(first.1.as_object().map(|body| body.len()), Some(2), "only error and reason: {}", first.1);
    for (what, answer) in &answers {
        assert_eq!(answer, first, "{what} must be refused exactly like no token");
    }
    before.assert_still(&host, plugins.path(), "the refused credentials").await;
    assert!(!host.log().contains(TOKEN), "the token, even in a query string, is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_plugin_names_get_400_before_the_plugins_directory_is_touched() {
    let (host, plugins) = start_host("").await;
    let before = Untouched::now(&host, plugins.path()).await;
    let client = reqwest::Client::new();
    // Path segments as sent; the server percent-decodes them.
    let names = [
        ("`..` and an encoded `/`", "..%2Ffixture-hostile".to_owned()),
        ("an encoded `/` leading out", "fixture-hostile%2F..%2F..%2Fescaped".to_owned()),
        ("an absolute path", "%2Ftmp%2Ffixture-hostile".to_owned()),
        ("a NUL", "fixture-hostile%00".to_owned()),
        ("a newline", "fixture-hostile%0A".to_owned()),
        ("upper case", "Fixture-Hostile".to_owned()),
        ("a Cyrillic `е`", "fixtur\u{435}-hostile".to_owned()),
        ("a fullwidth `ｆ`", "\u{ff46}ixture-hostile".to_owned()),
        ("bytes that are not UTF-8", "fixture-hostile%FF".to_owned()),
        ("65 characters", "a".repeat(65)),
        ("4000 characters", "fixture-hostile".repeat(266)),
    ];
    for (what, name) in &names {
        let upload = client.put(format!("{}/v1/admin/plugins/{name}", host.url)).bearer_auth(TOKEN);
        let answer = send(upload.body(version_2())).await;
        assert_refused(what, &answer, (400, "bad_request"));
        assert_eq!(answer.1["field"], "name", "{what}: {}", answer.1);
        before.assert_still(&host, plugins.path(), what).await;
    }
    // Dot segments that every client library resolves, sent as they are.
    for target in ["..", "%2e%2e", ".", "..%5c..%5cescaped"] {
        let answer = send_raw(&host, "PUT", &format!("/v1/admin/plugins/{target}")).await;
        assert_refused(target, &answer, (400, "bad_request"));
        before.assert_still(&host, plugins.path(), target).await;
    }
    // No route takes an empty name: the router's 404, still JSON, still nothing touched.
    let answer = send(client.put(format!("{}/v1/admin/plugins/", host.url)).bearer_auth(TOKEN)).await;
    assert_refused("an empty name", &answer, (404, "not_found"));
    before.assert_still(&host, plugins.path(), "an empty name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_whole_components_or_too_large_are_refused_and_nothing_is_written() {
    let (host, plugins) = start_host("[admin]\nmax_upload_mb = 1\n").await;
    let before = Untouched::now(&host, plugins.path()).await;
    let v2 = version_2();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect();
    let bodies: [(&str, Vec<u8>, (u16, &str)); 6] = [
        ("random bytes", random, (422, "unprocessable")),
        (
            "a text file",
            b"name = \"fixture-hostile\"\nversion = \"9.0.0\"\n".to_vec(),
            (422, "unprocessable"),
        ),
        ("a core module, not a component", b"\0asm\x01\0\0\0".to_vec(), (422, "unprocessable")),
        ("an empty body", Vec::new(), (422, "unprocessable")),
        ("the first half of a built component", v2[..v2.len() / 2].to_vec(), (422, "unprocessable")),
        ("one byte past max_upload_mb", vec![0; (1 << 20) + 1], (413, "payload_too_large")),
    ];
    let client = reqwest::Client::new();
    let upload = || client.put(format!("{}/v1/admin/plugins/{PLUGIN}", host.url)).bearer_auth(TOKEN);
    for (what, body, expected) in bodies {
        let answer = send(upload().body(body)).await;
        assert_refused(what, &answer, expected);
        before.assert_still(&host, plugins.path(), what).await;
    }

    // The same route takes a whole component, and keeps only it: no temporary file is left.
    let (status, body) = send(upload().body(v2.clone())).await;
    assert_eq!((status, &body["version"], &body["swapped"]), (200, &json!("2.0.0"), &json!(true)), "{body}");
    let after = Untouched::now(&host, plugins.path()).await;
    assert_eq!(after.files, [(format!("{PLUGIN}.wasm"), v2)]);
}
