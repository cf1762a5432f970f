//! Where the config comes from and how it is read: lookup order, TOML with located errors,
//! secrets from files, and profiles from `[snmp] profile-dir`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::profile::{Profile, validate_profile};
use super::source_map::SourceMap;
use super::validate::validate;
use super::{Config, DEFAULT_TOML, KeyPath, Secret};

/// Where the config came from; logged at start and re-read on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config PATH`.
    Flag(PathBuf),
    /// `$NOCTUA_CONFIG`.
    Env(PathBuf),
    /// `/etc/noctua/noctua.toml`.
    System(PathBuf),
    /// The embedded default.
    Embedded,
    /// `noctua demo`: the embedded default with `config/demo.toml` laid over it.
    Demo(DemoSetup),
}

/// What `noctua demo` decides at start and lays over the demo config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSetup {
    /// The store directory.
    pub store: PathBuf,
    /// The API token's file (made by the demo, so the console can write).
    pub token_file: PathBuf,
    /// The HTTP listen address.
    pub listen: std::net::SocketAddr,
}

/// The demo's network and settings, laid over [`DEFAULT_TOML`].
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

impl DemoSetup {
    /// The demo's whole config text: the embedded default, `config/demo.toml` over it (its
    /// tables merged key by key, its arrays replacing), then this setup's paths and address.
    pub fn text(&self) -> Result<String, String> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_TOML).map_err(|e| e.to_string())?;
        let demo: toml::Table = toml::from_str(DEMO_TOML).map_err(|e| e.to_string())?;
        lay_over(&mut merged, demo);
        let mut setup = toml::Table::new();
        let mut store = toml::Table::new();
        store.insert("path".into(), self.store.display().to_string().into());
        let mut http = toml::Table::new();
        http.insert(
            "token-file".into(),
            self.token_file.display().to_string().into(),
        );
        http.insert("listen".into(), self.listen.to_string().into());
        setup.insert("store".into(), store.into());
        setup.insert("http".into(), http.into());
        lay_over(&mut merged, setup);
        toml::to_string(&merged).map_err(|e| e.to_string())
    }
}

fn lay_over(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => lay_over(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl ConfigSource {
    /// Applies the lookup order: flag, then environment, then the system file if present, then
    /// the embedded default. Inputs are passed in so the order is testable.
    pub fn locate(flag: Option<PathBuf>, env: Option<OsString>, system: &Path) -> Self {
        if let Some(p) = flag {
            Self::Flag(p)
        } else if let Some(e) = env.filter(|e| !e.is_empty()) {
            Self::Env(PathBuf::from(e))
        } else if system.exists() {
            Self::System(system.to_owned())
        } else {
            Self::Embedded
        }
    }

    /// The lookup order as the daemon applies it: `flag`, `$NOCTUA_CONFIG`, the system file.
    pub fn from_environment(flag: Option<PathBuf>) -> Self {
        Self::locate(
            flag,
            std::env::var_os("NOCTUA_CONFIG"),
            Path::new(super::SYSTEM_PATH),
        )
    }

    /// The given file, else the embedded default (never /etc: replays and backtests must be
    /// reproducible).
    pub fn given(flag: Option<PathBuf>) -> Self {
        flag.map_or(Self::Embedded, Self::Flag)
    }

    /// Reads and validates the config.
    pub fn load(&self) -> Result<Config, ConfigError> {
        if let Self::Demo(setup) = self {
            let text = setup.text().map_err(|message| ConfigError::Invalid {
                origin: "<demo>".into(),
                issues: vec![ConfigIssue {
                    line: 1,
                    column: 1,
                    key: String::new(),
                    message,
                }],
            })?;
            return parse("<demo>", &text, Path::new("."));
        }
        match self.path() {
            None => parse("<embedded default>", DEFAULT_TOML, Path::new(".")),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let base = path.parent().unwrap_or(Path::new("."));
                parse(&path.display().to_string(), &text, base)
            }
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Self::Flag(p) | Self::Env(p) | Self::System(p) => Some(p),
            Self::Embedded | Self::Demo(_) => None,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(p) => write!(f, "{} (--config)", p.display()),
            Self::Env(p) => write!(f, "{} ($NOCTUA_CONFIG)", p.display()),
            Self::System(p) => write!(f, "{}", p.display()),
            Self::Embedded => f.write_str("embedded default"),
            Self::Demo(_) => f.write_str("embedded default + demo network"),
        }
    }
}

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key, e.g. `device[1].parent`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    #[error("{}", render(origin, issues))]
    Invalid {
        /// File name (or `<embedded default>`).
        origin: String,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
    },
}

fn render(origin: &str, issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| {
            format!(
                "{origin}:{}:{}: `{}`: {}",
                i.line, i.column, i.key, i.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses, resolves secret files and validates a config text. `origin` names it in errors;
/// relative `*-file` paths are taken relative to `base`, the config file's directory.
pub fn parse(origin: &str, text: &str, base: &Path) -> Result<Config, ConfigError> {
    let map = SourceMap::new(text);
    let mut config: Config = from_toml(origin, text, &map)?;
    let mut problems = Vec::new();
    resolve_secrets(&mut config, base, &mut problems);
    super::actions::resolve_secrets(&mut config, base, &mut problems);
    load_profiles(&mut config, base, &mut problems)?;
    validate(&config, &mut problems);
    if problems.is_empty() {
        return Ok(config);
    }
    Err(located(origin, &map, problems))
}

/// Deserialises a TOML text; an error names the line, column and key it is at.
fn from_toml<T: serde::de::DeserializeOwned>(
    origin: &str,
    text: &str,
    map: &SourceMap<'_>,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = map.line_col(span.start);
        ConfigError::Invalid {
            origin: origin.to_owned(),
            issues: vec![ConfigIssue {
                line,
                column,
                key: map.key_at(&span).to_string(),
                message: with_example(e.message().trim_end()),
            }],
        }
    })
}

/// A bad duration's message shows how durations are written.
fn with_example(message: &str) -> String {
    match message.strip_suffix("expected a duration") {
        Some(head) => format!("{head}expected {}", super::limits::DURATION_EXAMPLE),
        None => message.to_owned(),
    }
}

/// Adds the profiles of `[snmp] profile-dir`: every `NAME.toml` in it, in name order. A file
/// that is not a valid profile is an error of its own, naming that file, key and line.
fn load_profiles(
    config: &mut Config,
    base: &Path,
    problems: &mut Problems,
) -> Result<(), ConfigError> {
    let Some(dir) = &config.snmp.profile_dir else {
        return Ok(());
    };
    let dir = base.join(dir);
    let at = || root("snmp").key("profile-dir");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push((
                at(),
                format!("cannot read profile directory {}: {e}", dir.display()),
            ));
            return Ok(());
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            problems.push((
                at(),
                format!("profile file name is not UTF-8: {}", path.display()),
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let origin = path.display().to_string();
        let map = SourceMap::new(&text);
        let profile: Profile = from_toml(&origin, &text, &map)?;
        let mut issues = Vec::new();
        validate_profile(&profile, &mut issues);
        if !issues.is_empty() {
            return Err(located(&origin, &map, issues));
        }
        config.snmp.profiles.insert(name.to_owned(), profile);
    }
    Ok(())
}

/// Turns problems found by key into an error that names each one's line and column.
fn located(origin: &str, map: &SourceMap<'_>, problems: Problems) -> ConfigError {
    let issues = problems
        .into_iter()
        .map(|(path, message)| {
            let (line, column) = map.locate(&path);
            ConfigIssue {
                line,
                column,
                key: path.to_string(),
                message,
            }
        })
        .collect();
    ConfigError::Invalid {
        origin: origin.to_owned(),
        issues,
    }
}

pub(super) type Problems = Vec<(KeyPath, String)>;

pub(super) fn root(k: &str) -> KeyPath {
    KeyPath::default().key(k)
}

/// The systemd credential (`LoadCredential=http.token:...`) that gives the API token when the
/// config names none: how the Debian package hands a root-only token to a `DynamicUser`
/// service.
pub const HTTP_TOKEN_CREDENTIAL: &str = "http.token";

/// A credential systemd passed to this service (`$CREDENTIALS_DIRECTORY/NAME`), if any.
fn credential(name: &str) -> Option<Secret> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    Secret::from_file(&Path::new(&dir).join(name)).ok()
}

/// Reads every `*-file` secret into its inline slot, so later code has one place to look.
fn resolve_secrets(config: &mut Config, base: &Path, problems: &mut Problems) {
    let mut pair =
        |inline: &mut Option<Secret>, file: &Option<PathBuf>, at: KeyPath, name: &str| {
            let Some(path) = file else { return };
            let file_key = format!("{name}-file");
            if inline.is_some() {
                problems.push((
                    at.key(name),
                    format!("set either `{name}` or `{file_key}`, not both"),
                ));
                return;
            }
            let path = base.join(path);
            match Secret::from_file(&path) {
                Ok(s) => *inline = Some(s),
                Err(e) => problems.push((
                    at.key(&file_key),
                    format!("cannot read secret file {}: {e}", path.display()),
                )),
            }
        };
    let http = &mut config.http;
    pair(&mut http.token, &http.token_file, root("http"), "token");
    if http.token.is_none() && http.token_file.is_none() {
        http.token = credential(HTTP_TOKEN_CREDENTIAL);
    }
    let impact = &mut config.impact;
    pair(
        &mut impact.hash_key,
        &impact.hash_key_file,
        root("impact"),
        "hash-key",
    );
    let mqtt = &mut config.mqtt;
    pair(
        &mut mqtt.password,
        &mqtt.password_file,
        root("mqtt"),
        "password",
    );
    for (name, c) in &mut config.snmp.credentials {
        let at = root("snmp").key("credentials").key(name);
        pair(&mut c.community, &c.community_file, at.clone(), "community");
        pair(
            &mut c.write_community,
            &c.write_community_file,
            at.clone(),
            "write-community",
        );
        pair(&mut c.auth_key, &c.auth_key_file, at.clone(), "auth-key");
        pair(&mut c.priv_key, &c.priv_key_file, at, "priv-key");
    }
    let mqtt = &mut config.mqtt;
    tls_files(
        "mqtt",
        [&mut mqtt.ca_file, &mut mqtt.cert_file, &mut mqtt.key_file],
        base,
        problems,
    );
    let cluster = &mut config.cluster;
    tls_files(
        "cluster",
        [
            &mut cluster.ca_file,
            &mut cluster.cert_file,
            &mut cluster.key_file,
        ],
        base,
        problems,
    );
    if let Some(path) = &mut cluster.credentials_file {
        readable(
            path,
            base,
            root("cluster").key("credentials-file"),
            problems,
        );
    }
}

/// A section's `ca-file`, `cert-file` and `key-file`: relative to the config file, readable,
/// and a client certificate only with its key and a CA.
fn tls_files(
    section: &str,
    [ca, cert, key]: [&mut Option<PathBuf>; 3],
    base: &Path,
    problems: &mut Problems,
) {
    for (name, file) in [
        ("ca-file", &mut *ca),
        ("cert-file", &mut *cert),
        ("key-file", &mut *key),
    ] {
        if let Some(path) = file {
            readable(path, base, root(section).key(name), problems);
        }
    }
    if cert.is_some() != key.is_some() {
        problems.push((
            root(section).key("cert-file"),
            "set both `cert-file` and `key-file`, or neither".to_owned(),
        ));
    }
    if cert.is_some() && ca.is_none() {
        problems.push((
            root(section).key("ca-file"),
            "a client certificate needs TLS: set `ca-file` too".to_owned(),
        ));
    }
}

/// Makes `path` relative to the config file and says if it cannot be read.
fn readable(path: &mut PathBuf, base: &Path, at: KeyPath, problems: &mut Problems) {
    *path = base.join(&*path);
    if let Err(e) = std::fs::metadata(&*path) {
        problems.push((at, format!("cannot read {}: {e}", path.display())));
    }
}
