//! `sluice plugin new`: write a plugin to start from, one that builds and passes `sluice plugin
//! test` on its own samples as it is: a Rust crate for `wasm32-wasip2` (the default), or with
//! `--lang python` / `--lang js` an app built by componentize-py / componentize-js, with the
//! contract and a helper module beside it (so those need nothing of a checkout).
//!
//! The crate is the templates in `plugin_new/`, modelled on `explode-status-logs`: one output,
//! settings read in `init`, a batch function that takes them as an argument, and a sample batch
//! with what it must give. The contract comes with the SDK (its bindings are generated from the
//! `wit/` of the checkout it sits in), so the SDK is all the crate has to find:
//!
//! - In a checkout's `plugins/`, beside the SDK, the crate is a member of the checkout's
//!   workspace through its `plugins/*` glob: it takes the workspace's dependency versions and
//!   lints, and `scripts/build-plugins.sh` builds it with the others.
//! - Elsewhere with `--sdk` (or below a checkout) it is a workspace of its own with a path
//!   dependency on that SDK, and a copy of the checkout's `Cargo.lock`, so it builds the
//!   dependency versions the SDK was tested with.
//! - With no checkout at all it carries the SDK this binary was built with, source and
//!   contract, under `vendor/`, and this binary's `Cargo.lock`: it builds with registry
//!   dependencies only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::config::is_plain_name;

#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name: lowercase ASCII letters and digits in words joined by single `-`s,
    /// starting with a letter. It names the crate, the component (`NAME.wasm`) and the plugin in
    /// pipelines (`plugin = "NAME"`).
    #[arg(value_parser = parse_plugin_name)]
    name: String,
    /// The directory to create the crate in, as `DIR/NAME`; made if missing [default: the current
    /// directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The plugin SDK: `plugins/sdk` of a sluice checkout [default: the one of the checkout DIR
    /// or the current directory is in].
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
}

/// The languages `plugin new` writes plugins in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// The contract every plugin implements, as the host was built with it.
pub const WIT: &str = include_str!("../../../wit/transform.wit");
/// The Python helper that builds column batches from rows given as dicts.
pub const PYTHON_HELPER: &str = include_str!("plugin_new/python/sluice_plugin.py");
/// The JavaScript helper that builds column batches from rows given as plain objects.
pub const JS_HELPER: &str = include_str!("plugin_new/js/sluice-plugin.js");

/// The files of a Python plugin, by path in its directory.
const PYTHON_FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("plugin_new/python/app.py.tmpl")),
    ("sluice_plugin.py", PYTHON_HELPER),
    ("wit/transform.wit", WIT),
    ("build.sh", include_str!("plugin_new/python/build.sh.tmpl")),
    ("requirements.txt", include_str!("plugin_new/python/requirements.txt")),
    ("README.md", include_str!("plugin_new/python/README.md.tmpl")),
    (".gitignore", include_str!("plugin_new/python/gitignore.tmpl")),
    ("samples/input.jsonl", include_str!("plugin_new/samples/input.jsonl")),
    ("samples/expected.json", include_str!("plugin_new/python/samples/expected.json")),
];

/// The files of a JavaScript plugin, by path in its directory.
const JS_FILES: &[(&str, &str)] = &[
    ("app.js", include_str!("plugin_new/js/app.js.tmpl")),
    ("sluice-plugin.js", JS_HELPER),
    ("wit/transform.wit", WIT),
    ("package.json", include_str!("plugin_new/js/package.json.tmpl")),
    ("README.md", include_str!("plugin_new/js/README.md.tmpl")),
    (".gitignore", include_str!("plugin_new/js/gitignore.tmpl")),
    ("samples/input.jsonl", include_str!("plugin_new/samples/input.jsonl")),
    ("samples/expected.json", include_str!("plugin_new/js/samples/expected.json")),
];

/// The longest plugin name: the admin API's limit for an upload's name.
const MAX_NAME_LEN: usize = 64;

/// The SDK's package name, checked so that `--sdk` cannot point at some other crate.
const SDK_PACKAGE: &str = "sluice-plugin-sdk";

/// The workspace glob that makes a crate beside the SDK a member of a checkout's workspace.
const PLUGINS_GLOB: &str = "plugins/*";

const CARGO_MEMBER: &str = include_str!("plugin_new/Cargo.member.toml.tmpl");
const CARGO_STANDALONE: &str = include_str!("plugin_new/Cargo.standalone.toml.tmpl");
const GITIGNORE: &str = include_str!("plugin_new/gitignore.tmpl");
/// The sluice repository's `rustfmt.toml`, which the templates are formatted by.
const RUSTFMT: &str = include_str!("plugin_new/rustfmt.toml.tmpl");

/// The files every plugin crate gets, by path in the crate.
const SOURCES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("plugin_new/lib.rs.tmpl")),
    ("src/settings.rs", include_str!("plugin_new/settings.rs.tmpl")),
    ("src/outputs.rs", include_str!("plugin_new/outputs.rs.tmpl")),
    ("src/batch.rs", include_str!("plugin_new/batch.rs.tmpl")),
    ("samples/input.jsonl", include_str!("plugin_new/samples/input.jsonl")),
    ("samples/expected.json", include_str!("plugin_new/samples/expected.json")),
];

/// Checks a plugin name for clap, so a bad one is a usage error before anything is written.
fn parse_plugin_name(name: &str) -> Result<String, String> {
    let words_are_joined_by_single_dashes = name.split('-').all(|word| !word.is_empty());
    if is_plain_name(name)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && words_are_joined_by_single_dashes
        && name.len() <= MAX_NAME_LEN
    {
        return Ok(name.to_owned());
    }
    // Escaped, so a control character or a look-alike letter shows for what it is.
    Err(format!(
        "`{}` is not a plugin name: use lowercase ASCII letters and digits, in words joined by \
         single `-`s, starting with a letter, at most {MAX_NAME_LEN} characters (for example \
         `normalize-events`)",
        name.escape_default()
    ))
}

/// Where the new crate sits, which decides its manifest and the commands that build it.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    /// Beside the SDK in a checkout's `plugins/`: a member of the checkout's workspace.
    Member { checkout: PathBuf },
    /// Anywhere else: a workspace of its own with a path dependency on the SDK.
    Standalone { sdk: PathBuf },
    /// No checkout: a workspace of its own carrying the SDK under `vendor/`.
    Vendored,
}

/// Where a crate with no checkout keeps the SDK, relative to the crate.
const VENDORED_SDK: &str = "vendor/sluice-plugin-sdk";

/// The SDK and the samples crate it uses, as this binary was built with them: what a crate with
/// no checkout carries under `vendor/`.
const VENDORED: &[(&str, &str)] = &[
    ("vendor/sluice-plugin-sdk/Cargo.toml", include_str!("plugin_new/vendor/sdk.Cargo.toml.tmpl")),
    ("vendor/sluice-plugin-sdk/README.md", include_str!("../../../plugins/sdk/README.md")),
    ("vendor/sluice-plugin-sdk/wit/transform.wit", WIT),
    ("vendor/sluice-plugin-sdk/src/lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("vendor/sluice-plugin-sdk/src/config.rs", include_str!("../../../plugins/sdk/src/config.rs")),
    ("vendor/sluice-plugin-sdk/src/json.rs", include_str!("../../../plugins/sdk/src/json.rs")),
    ("vendor/sluice-plugin-sdk/src/json/scan.rs", include_str!("../../../plugins/sdk/src/json/scan.rs")),
    ("vendor/sluice-plugin-sdk/src/render.rs", include_str!("../../../plugins/sdk/src/render.rs")),
    ("vendor/sluice-plugin-sdk/src/rows.rs", include_str!("../../../plugins/sdk/src/rows.rs")),
    ("vendor/sluice-plugin-sdk/src/samples.rs", include_str!("../../../plugins/sdk/src/samples.rs")),
    ("vendor/sluice-plugin-sdk/src/schema.rs", include_str!("../../../plugins/sdk/src/schema.rs")),
    ("vendor/sluice-plugin-sdk/src/settings.rs", include_str!("../../../plugins/sdk/src/settings.rs")),
    ("vendor/sluice-samples/Cargo.toml", include_str!("plugin_new/vendor/samples.Cargo.toml.tmpl")),
    ("vendor/sluice-samples/src/lib.rs", include_str!("../../../plugins/samples/src/lib.rs")),
];

/// The versions this binary was built with, which a crate with no checkout builds too.
const LOCK: &str = include_str!("../../../Cargo.lock");

/// Writes the crate and prints what to run next.
///
/// # Errors
/// `DIR/NAME` exists already, no SDK is found (or `--sdk` is not one), or a file cannot be
/// written; a crate left half written is removed.
pub fn run(args: PluginNewArgs) -> anyhow::Result<ExitCode> {
    let parent = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let crate_dir = parent.join(&args.name);
    if crate_dir.symlink_metadata().is_ok() {
        bail!("{} already exists; choose another name or --dir", crate_dir.display());
    }
    if args.lang != Lang::Rust {
        return run_interpreted(&args.name, args.lang, &parent, &crate_dir);
    }
    let sdk = match &args.sdk {
        Some(sdk) => Some(checked_sdk(sdk)?),
        None => find_sdk(&parent)?,
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let parent_canonical =
        parent.canonicalize().with_context(|| format!("cannot resolve {}", parent.display()))?;
    let layout = match sdk {
        Some(sdk) => layout_for(&parent_canonical, sdk),
        None => Layout::Vendored,
    };
    let files = crate_files(&args.name, &layout);
    // `create_dir` rather than the check above decides, so two runs cannot write one crate.
    std::fs::create_dir(&crate_dir).with_context(|| format!("cannot create {}", crate_dir.display()))?;
    if let Err(error) = write_files(&crate_dir, &files) {
        // Only files this run made are in it; a half crate would only fail later, less clearly.
        let _ = std::fs::remove_dir_all(&crate_dir);
        return Err(error);
    }
    print!("{}", next_steps(&args.name, &crate_dir, &layout));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PluginWitArgs {
    /// Print this language's helper module instead of the contract.
    #[arg(long, value_enum, value_name = "LANG")]
    helper: Option<HelperLang>,
}

/// The languages with a helper module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HelperLang {
    Python,
    Js,
}

/// Prints the contract (or a helper) to stdout, for a plugin written outside a checkout.
pub fn print_wit(args: &PluginWitArgs) -> ExitCode {
    print!(
        "{}",
        match args.helper {
            None => WIT,
            Some(HelperLang::Python) => PYTHON_HELPER,
            Some(HelperLang::Js) => JS_HELPER,
        }
    );
    ExitCode::SUCCESS
}

/// Writes a Python or JavaScript plugin into `dir` and prints what to run next.
fn run_interpreted(name: &str, lang: Lang, parent: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let templates = if lang == Lang::Python { PYTHON_FILES } else { JS_FILES };
    let files: Vec<(&str, String)> =
        templates.iter().map(|(path, template)| (*path, template.replace("{{name}}", name))).collect();
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Err(error) = write_files(dir, &files).and_then(|()| executable(&dir.join("build.sh"))) {
        let _ = std::fs::remove_dir_all(dir);
        return Err(error);
    }
    let build = match lang {
        Lang::Python => {
            "python3 -m pip install -r requirements.txt   # componentize-py, once
  ./build.sh"
        }
        _ => {
            "npm install                                  # componentize-js, once
  npm run build"
        }
    };
    print!(
        "Created plugin `{name}` ({lang}) in {dir}.\n\nNext:\n  cd {dir}\n  {build}\n  \
         sluice plugin test {name}.wasm --input samples/input.jsonl --expect samples/expected.json\n\n\
         Deploy it by copying {name}.wasm into the host's plugins directory (by rename, so the host \
         never loads half a file), or through the admin API.\n",
        lang = if lang == Lang::Python { "Python" } else { "JavaScript" },
        dir = dir.display(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Makes `path` executable, when it exists.
fn executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !path.exists() {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

/// `sdk` when it is the plugin SDK's crate directory, made absolute.
fn checked_sdk(sdk: &Path) -> anyhow::Result<PathBuf> {
    let manifest = sdk.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!("--sdk {}: no Cargo.toml there; give plugins/sdk of a sluice checkout", sdk.display())
    })?;
    let package: toml::Table = text.parse().with_context(|| format!("{} is not TOML", manifest.display()))?;
    let name = package.get("package").and_then(|package| package.get("name")).and_then(toml::Value::as_str);
    if name != Some(SDK_PACKAGE) {
        bail!(
            "--sdk {}: the crate there is not `{SDK_PACKAGE}`; give plugins/sdk of a sluice checkout",
            sdk.display()
        );
    }
    sdk.canonicalize().with_context(|| format!("cannot resolve {}", sdk.display()))
}

/// The SDK of the sluice checkout `dir` is in (`dir` may not exist yet), else of the one the
/// current directory is in; `None` outside any checkout.
fn find_sdk(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let current = std::env::current_dir().context("cannot read the current directory")?;
    let starts = [current.join(dir), current];
    let found = starts
        .iter()
        .flat_map(|start| start.ancestors())
        .map(|ancestor| ancestor.join("plugins/sdk"))
        .find(|sdk| sdk.join("Cargo.toml").is_file());
    found.map(|sdk| checked_sdk(&sdk)).transpose()
}

/// A [`Layout::Member`] when `parent` is the directory the SDK sits in and the checkout's
/// workspace takes every crate there as a member; else a [`Layout::Standalone`].
fn layout_for(parent: &Path, sdk: PathBuf) -> Layout {
    let Some(plugins) = sdk.parent().filter(|plugins| *plugins == parent) else {
        return Layout::Standalone { sdk };
    };
    let Some(checkout) = plugins.parent() else { return Layout::Standalone { sdk } };
    let workspace = std::fs::read_to_string(checkout.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok());
    let members = workspace
        .as_ref()
        .and_then(|manifest| manifest.get("workspace")?.get("members")?.as_array().cloned())
        .unwrap_or_default();
    if members.iter().any(|member| member.as_str() == Some(PLUGINS_GLOB)) {
        Layout::Member { checkout: checkout.to_path_buf() }
    } else {
        Layout::Standalone { sdk }
    }
}

/// Every file of the crate `name`, by path in the crate, with its contents.
fn crate_files(name: &str, layout: &Layout) -> Vec<(&'static str, String)> {
    let fill = |template: &str| template.replace("{{name}}", name).replace("{{type_name}}", &type_name(name));
    let mut files: Vec<(&'static str, String)> =
        SOURCES.iter().map(|(path, template)| (*path, fill(template))).collect();
    match layout {
        Layout::Member { .. } => files.push(("Cargo.toml", fill(CARGO_MEMBER))),
        Layout::Standalone { sdk } => {
            // A TOML string, quoted and escaped as the path needs.
            let sdk_path = toml::Value::String(sdk.to_string_lossy().into_owned()).to_string();
            files.push(("Cargo.toml", fill(CARGO_STANDALONE).replace("{{sdk_path}}", &sdk_path)));
            files.push((".gitignore", GITIGNORE.to_owned()));
            files.push(("rustfmt.toml", RUSTFMT.to_owned()));
            let lock_path = sdk.join("../../Cargo.lock");
            if let Ok(lock) = std::fs::read_to_string(&lock_path) {
                // Cargo keeps the versions the crate uses from it and drops the rest at the first build.
                files.push(("Cargo.lock", lock));
            }
        }
        Layout::Vendored => {
            let sdk_path = toml::Value::String(VENDORED_SDK.to_owned()).to_string();
            files.push(("Cargo.toml", fill(CARGO_STANDALONE).replace("{{sdk_path}}", &sdk_path)));
            files.push((".gitignore", GITIGNORE.to_owned()));
            files.push(("rustfmt.toml", RUSTFMT.to_owned()));
            files.push(("Cargo.lock", LOCK.to_owned()));
            files.extend(VENDORED.iter().map(|(path, text)| (*path, (*text).to_owned())));
        }
    }
    files
}

/// The plugin type's name: `normalize-events` gives `NormalizeEvents`.
fn type_name(name: &str) -> String {
    let mut type_name = String::with_capacity(name.len());
    for word in name.split('-') {
        let mut letters = word.chars();
        if let Some(first) = letters.next() {
            type_name.push(first.to_ascii_uppercase());
            type_name.extend(letters);
        }
    }
    type_name
}

fn write_files(crate_dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    for (path, contents) in files {
        let path = crate_dir.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// What was made and the commands that test, build, check and deploy it.
fn next_steps(name: &str, crate_dir: &Path, layout: &Layout) -> String {
    let (made, commands, component) = match layout {
        Layout::Member { checkout } => {
            let component = format!(".run/plugins/{name}.wasm");
            let made = format!("a member of the workspace at {}", checkout.display());
            let commands = format!(
                "  cd {checkout}\n  \
                 cargo test -p {name}                                # the samples, natively\n  \
                 SLUICE_PLUGINS={name} scripts/build-plugins.sh      # builds {component}\n  \
                 sluice plugin test {component} --input plugins/{name}/samples/input.jsonl \
                 --expect plugins/{name}/samples/expected.json\n",
                checkout = checkout.display(),
            );
            (made, commands, component)
        }
        Layout::Standalone { .. } | Layout::Vendored => {
            // Where cargo will put it when run from the shell that ran this.
            let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
            let component = format!("{target}/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
            let made = match layout {
                Layout::Standalone { sdk } => format!("with the SDK at {}", sdk.display()),
                _ => format!("with the SDK this sluice was built with, in {VENDORED_SDK}"),
            };
            let commands = format!(
                "  cd {crate_dir}\n  \
                 rustup target add wasm32-wasip2                     # once\n  \
                 cargo test                                          # the samples, natively\n  \
                 cargo build --release --target wasm32-wasip2\n  \
                 sluice plugin test {component} --input samples/input.jsonl --expect samples/expected.json\n",
                crate_dir = crate_dir.display(),
            );
            (made, commands, component)
        }
    };
    format!(
        "Created plugin `{name}` in {crate_dir}, {made}.\n\nNext:\n{commands}\n\
         Deploy it by copying {component} into the host's plugins directory as {name}.wasm (by \
         rename, so the host never loads half a file), or through the admin API:\n  \
         curl -s -H \"Authorization: Bearer $SLUICE_ADMIN_TOKEN\" -T {component} \
         localhost:8080/v1/admin/plugins/{name}\n",
        crate_dir = crate_dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lowercase_names_are_plugin_names() {
        for name in ["demo", "normalize-events", "mail2-request", "a"] {
            assert_eq!(parse_plugin_name(name), Ok(name.to_owned()));
        }
    }

    #[test]
    fn other_names_are_refused_with_what_is_allowed() {
        for name in ["", "Demo", "my_plugin", "2fa", "-x", "x-", "a--b", "dé", "a b", "../x", "a/b"] {
            let error = parse_plugin_name(name).expect_err(name);
            assert!(error.contains("is not a plugin name: use lowercase ASCII letters"), "{error}");
        }
        assert!(parse_plugin_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(parse_plugin_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn standalone_crates_are_formatted_as_the_repository() {
        assert_eq!(RUSTFMT, include_str!("../../../rustfmt.toml"));
    }

    #[test]
    fn type_names_are_the_words_capitalised() {
        assert_eq!(type_name("demo"), "Demo");
        assert_eq!(type_name("normalize-events-2"), "NormalizeEvents2");
    }

    /// A sluice checkout with only what `plugin new` looks at: the workspace manifest and the SDK.
    fn checkout(members: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("plugins/sdk")).expect("sdk dir");
        std::fs::write(root.path().join("Cargo.toml"), format!("[workspace]\nmembers = {members}\n"))
            .expect("workspace manifest");
        std::fs::write(root.path().join("Cargo.lock"), "version = 4\n").expect("lock");
        std::fs::write(
            root.path().join("plugins/sdk/Cargo.toml"),
            format!("[package]\nname = \"{SDK_PACKAGE}\"\n"),
        )
        .expect("sdk manifest");
        root
    }

    fn canonical(path: &Path) -> PathBuf {
        path.canonicalize().expect("canonical path")
    }

    #[test]
    fn a_crate_beside_the_sdk_is_a_workspace_member() {
        let root = checkout(r#"["host", "plugins/*"]"#);
        let root_path = canonical(root.path());
        let sdk = find_sdk(&root_path.join("plugins")).expect("sdk found").expect("a checkout");
        assert_eq!(sdk, root_path.join("plugins/sdk"));
        let layout = layout_for(&root_path.join("plugins"), sdk);
        assert_eq!(layout, Layout::Member { checkout: root_path });
        let files = crate_files("my-plugin", &layout);
        let manifest = &files.iter().find(|(path, _)| *path == "Cargo.toml").expect("manifest").1;
        assert!(manifest.contains("name = \"my-plugin\"") && manifest.contains("edition.workspace = true"));
        assert!(!manifest.contains("[workspace]"), "{manifest}");
        assert!(files.iter().all(|(path, _)| *path != "Cargo.lock"));
    }

    #[test]
    fn a_crate_elsewhere_is_its_own_workspace_with_the_sdk_by_path_and_its_lock() {
        let root = checkout(r#"["plugins/*"]"#);
        let sdk = checked_sdk(&root.path().join("plugins/sdk")).expect("sdk");
        let elsewhere = tempfile::tempdir().expect("temp dir");
        let layout = layout_for(&canonical(elsewhere.path()), sdk.clone());
        assert_eq!(layout, Layout::Standalone { sdk: sdk.clone() });
        let files = crate_files("demo", &layout);
        let file = |name: &str| files.iter().find(|(path, _)| *path == name).map(|(_, text)| text.as_str());
        let manifest: toml::Table = file("Cargo.toml").expect("manifest").parse().expect("TOML");
        assert!(manifest.contains_key("workspace"));
        let sdk_path = manifest["dependencies"][SDK_PACKAGE]["path"].as_str();
        assert_eq!(sdk_path, Some(sdk.to_string_lossy().as_ref()));
        assert_eq!(file("Cargo.lock"), Some("version = 4\n"));
    }

    #[test]
    fn plugins_beside_an_sdk_the_workspace_does_not_glob_are_standalone() {
        let root = checkout(r#"["host"]"#);
        let sdk = checked_sdk(&root.path().join("plugins/sdk")).expect("sdk");
        let layout = layout_for(&canonical(&root.path().join("plugins")), sdk.clone());
        assert_eq!(layout, Layout::Standalone { sdk });
    }

    #[test]
    fn every_placeholder_is_filled() {
        let layouts = [
            Layout::Member { checkout: PathBuf::from("/checkout") },
            Layout::Standalone { sdk: PathBuf::from("/checkout/plugins/sdk") },
        ];
        for layout in &layouts {
            for (path, text) in crate_files("demo", layout) {
                assert!(!text.contains("{{"), "{path} keeps a placeholder");
            }
        }
    }

    #[test]
    fn an_sdk_path_that_is_no_sdk_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = checked_sdk(dir.path()).expect_err("no manifest").to_string();
        assert!(error.contains("no Cargo.toml there"), "{error}");
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"other\"\n").expect("manifest");
        let error = checked_sdk(dir.path()).expect_err("other crate").to_string();
        assert!(error.contains("is not `sluice-plugin-sdk`"), "{error}");
    }

    #[test]
    fn an_existing_directory_is_left_alone() {
        let root = checkout(r#"["plugins/*"]"#);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("demo")).expect("existing dir");
        let args = PluginNewArgs {
            name: "demo".to_owned(),
            dir: Some(dir.path().to_path_buf()),
            sdk: Some(root.path().join("plugins/sdk")),
            lang: Lang::Rust,
        };
        let error = run(args).expect_err("refused").to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path().join("demo")).expect("dir").count(), 0);
    }

    #[test]
    fn a_crate_with_no_checkout_carries_the_sdk_and_builds_the_same_versions() {
        let files = crate_files("demo", &Layout::Vendored);
        let file = |name: &str| files.iter().find(|(path, _)| *path == name).map(|(_, text)| text.as_str());
        let manifest: toml::Table = file("Cargo.toml").expect("manifest").parse().expect("TOML");
        assert_eq!(manifest["dependencies"][SDK_PACKAGE]["path"].as_str(), Some(VENDORED_SDK));
        assert_eq!(file("Cargo.lock"), Some(LOCK));
        assert_eq!(file("vendor/sluice-plugin-sdk/wit/transform.wit"), Some(WIT));
        let sdk_lib = file("vendor/sluice-plugin-sdk/src/lib.rs").expect("the SDK's source");
        assert!(sdk_lib.contains("path: \"wit/transform.wit\""), "the SDK finds the contract beside it");
    }

    /// The vendored manifests must ask for what the SDK and the samples crate use, or a crate
    /// with no checkout builds against something else than the SDK was tested with.
    #[test]
    fn the_vendored_manifests_depend_on_what_the_crates_themselves_do() {
        let names = |text: &str| -> Vec<String> {
            let manifest: toml::Table = text.parse().expect("TOML");
            let mut names: Vec<String> =
                manifest["dependencies"].as_table().expect("deps").keys().cloned().collect();
            if let Some(target) = manifest.get("target").and_then(|t| t.as_table()) {
                for table in target.values() {
                    names.extend(table["dependencies"].as_table().expect("deps").keys().cloned());
                }
            }
            names.sort();
            names
        };
        let pairs = [
            (
                include_str!("../../../plugins/sdk/Cargo.toml"),
                include_str!("plugin_new/vendor/sdk.Cargo.toml.tmpl"),
            ),
            (
                include_str!("../../../plugins/samples/Cargo.toml"),
                include_str!("plugin_new/vendor/samples.Cargo.toml.tmpl"),
            ),
        ];
        for (real, vendored) in pairs {
            assert_eq!(names(real), names(vendored));
        }
        let sdk_sources = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk/src"))
            .expect("sdk sources")
            .filter(|entry| entry.as_ref().is_ok_and(|entry| entry.path().is_file()))
            .count();
        let vendored_sources = VENDORED
            .iter()
            .filter(|(path, _)| path.starts_with("vendor/sluice-plugin-sdk/src/") && !path.contains("/json/"))
            .count();
        assert_eq!(sdk_sources, vendored_sources, "every file of the SDK's src/ is carried");
    }

    #[test]
    fn python_and_javascript_plugins_get_the_contract_the_helper_and_their_name() {
        for (lang, files) in [(Lang::Python, PYTHON_FILES), (Lang::Js, JS_FILES)] {
            let dir = tempfile::tempdir().expect("temp dir");
            let args = PluginNewArgs {
                name: "my-filter".to_owned(),
                dir: Some(dir.path().to_path_buf()),
                sdk: None,
                lang,
            };
            run(args).expect("written without a checkout");
            let plugin = dir.path().join("my-filter");
            for (path, _) in files {
                assert!(plugin.join(path).is_file(), "{lang:?}: {path}");
            }
            assert_eq!(std::fs::read_to_string(plugin.join("wit/transform.wit")).expect("wit"), WIT);
            let app = if lang == Lang::Python { "app.py" } else { "app.js" };
            let app = std::fs::read_to_string(plugin.join(app)).expect("app");
            assert!(app.contains("\"my-filter\"") && !app.contains("{{name}}"), "{app}");
        }
    }
}
