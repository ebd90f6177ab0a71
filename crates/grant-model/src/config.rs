//! The config document (SPEC "Config document") and the admin credentials object, parsed strictly: an unknown
//! field is an error, because a misspelt `max_duration_seconds` silently ignored would widen access.

use crate::delivery::{Auth, CredentialDelivery};
use crate::error::ConfigError;
use crate::grant::ExtensionLimits;
use crate::naming;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The shortest access anyone can ask for: shorter grants would expire before the reaper's first pass.
pub const MIN_DURATION_SECONDS: u64 = 60;
/// Used when a target names no default duration (capped by its maximum).
pub const FALLBACK_DEFAULT_DURATION_SECONDS: u64 = 3600;
/// `max_extensions` when a target names none (SPEC).
pub const DEFAULT_MAX_EXTENSIONS: u32 = 10;
/// The most `max_extensions` may be: every extension is a history entry, and an item must stay far below
/// DynamoDB's 400 KB whatever the config says.
pub const MAX_EXTENSIONS_LIMIT: u32 = 50;
/// Longest allowed `user_prefix`: leaves room for the requester's part and the random suffix in 63 bytes.
pub const MAX_USER_PREFIX_BYTES: usize = 20;
/// Where admin credential objects must live: the Terraform module's bucket policy lets only the two Lambda
/// roles and the `secret_readers` roles read this prefix, and expires its old versions. An object anywhere
/// else would be readable by every principal with a broad `s3:GetObject`.
pub const ADMIN_SECRET_PREFIX: &str = "secrets/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub user_prefix: String,
    pub databases: BTreeMap<String, DatabaseConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres` when left out.
    #[serde(default, skip_serializing_if = "is_default")]
    pub engine: Engine,
    pub host: String,
    /// The engine's default port (5432, 3306) when left out.
    #[serde(default)]
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    /// Exactly one of the three admin credential fields; [`DatabaseConfig::admin`] says which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_secret_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_secret_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_iam_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_key: Option<String>,
    /// Reader instance endpoints: a session on a reader can only be ended there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readers: Vec<ReaderConfig>,
    /// The Aurora cluster whose reader instances are found through the RDS API, as `readers` are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_identifier: Option<String>,
    pub targets: BTreeMap<String, TargetConfig>,
}

/// A reader instance, reached with its database's `dbname`, `sslmode` and admin credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    pub host: String,
    /// The database's `port` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// One server the admin connects to, in one database: the writer, a reader instance, or another database on
/// the writer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl DatabaseConfig {
    /// The writer, in the configured database.
    pub fn writer(&self) -> Endpoint {
        Endpoint { host: self.host.clone(), port: self.port, dbname: self.dbname.clone() }
    }

    /// The configured reader instances, in the configured database.
    pub fn configured_readers(&self) -> Vec<Endpoint> {
        let reader = |r: &ReaderConfig| Endpoint {
            host: r.host.clone(),
            port: r.port.unwrap_or(self.port),
            dbname: self.dbname.clone(),
        };
        self.readers.iter().map(reader).collect()
    }
}

impl Endpoint {
    /// The same server, another database.
    pub fn in_database(&self, dbname: &str) -> Endpoint {
        Endpoint { dbname: dbname.to_string(), ..self.clone() }
    }

    /// How faults name this endpoint of configured database `name`: just `name` for the configured writer.
    pub fn label(&self, name: &str, db: &DatabaseConfig) -> String {
        let mut label = name.to_string();
        if self.host != db.host || self.port != db.port {
            label.push_str(&format!(" on {}:{}", self.host, self.port));
        }
        if self.dbname != db.dbname {
            label.push_str(&format!(", database {:?}", self.dbname));
        }
        label
    }
}

/// The database server a configured database runs. Everything a grant promises holds on both; how it is carried
/// out differs (see `grant_model::mysql`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL 14-17 (Aurora PostgreSQL, RDS, self-managed).
    #[default]
    Postgres,
    /// Aurora MySQL 3 (MySQL 8.0 compatible); MariaDB 10.11 in local tests.
    Mysql,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }

    /// The longest user name the server keeps whole: PostgreSQL truncates past 63 bytes, MySQL refuses past 32
    /// characters.
    pub fn max_user_name_bytes(self) -> usize {
        match self {
            Engine::Postgres => naming::MAX_IDENTIFIER_BYTES,
            Engine::Mysql => naming::MAX_MYSQL_USER_BYTES,
        }
    }

    /// A new temporary user's name on this engine.
    pub fn temp_username(self, prefix: &str, requester: &str) -> String {
        naming::temp_username_within(prefix, requester, self.max_user_name_bytes())
    }
}

/// RDS DB cluster identifiers: 1-63 letters, digits and hyphens, starting with a letter.
fn valid_cluster_identifier(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
}

/// Where the admin's credentials come from (SPEC "Admin user"): exactly one per database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSource<'a> {
    /// An S3 object under `secrets/` in the config bucket.
    S3Object(&'a str),
    /// A Secrets Manager secret (ARN), e.g. the master user secret RDS manages and rotates.
    Secret(&'a str),
    /// No password: an RDS IAM authentication token for this user, signed with the Lambda's own credentials.
    IamUser(&'a str),
}

impl DatabaseConfig {
    /// The admin credential source, or why the three fields do not name exactly one.
    pub fn admin(&self) -> Result<AdminSource<'_>, String> {
        let named = [
            self.admin_secret_key.as_deref().map(AdminSource::S3Object),
            self.admin_secret_arn.as_deref().map(AdminSource::Secret),
            self.admin_iam_user.as_deref().map(AdminSource::IamUser),
        ];
        match named.into_iter().flatten().collect::<Vec<_>>()[..] {
            [one] => Ok(one),
            _ => Err("must name exactly one of admin_secret_key, admin_secret_arn and admin_iam_user".into()),
        }
    }
}

/// A database's `sslmode`: how the admin connection reaches it, and what a user is told to use. `allow` and
/// `prefer` are refused: an attacker can downgrade them to an unencrypted connection.
// Deserialized by hand, so a refused or unknown value gets a message saying why and what to use instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP: for local development only.
    Disable,
    /// Encrypted, server certificate not checked; the admin's password is sent only through SCRAM with
    /// channel binding, so an impostor server learns nothing.
    Require,
    /// Encrypted, certificate chain checked against the CA bundle, host name not checked.
    VerifyCa,
    /// Encrypted, certificate chain and host name checked.
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 4] = [SslMode::Disable, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode named `value`, or why there is none.
    pub fn parse(value: &str) -> Result<SslMode, String> {
        const USE: &str = "use \"require\", \"verify-ca\" or \"verify-full\" (\"disable\" only for local development)";
        if let Some(mode) = SslMode::ALL.into_iter().find(|mode| mode.as_str() == value) {
            return Ok(mode);
        }
        Err(match value {
            "allow" | "prefer" => format!(
                "sslmode {value:?} is refused: it can be downgraded by an attacker to an unencrypted connection, \
                 which exposes everything sent, passwords included; {USE}"
            ),
            _ => format!("unknown sslmode {value:?}: {USE}"),
        })
    }
}

impl<'de> Deserialize<'de> for SslMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        SslMode::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A new LOGIN role that exists only for the grant.
    TempUser,
    /// An existing user temporarily made a member of the target roles.
    RoleEscalation,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::TempUser => "temp_user",
            Strategy::RoleEscalation => "role_escalation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub strategy: Strategy,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_duration_seconds: Option<u64>,
    pub max_duration_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extensions: Option<u32>,
    /// Counted from `created_at`; 4 x `max_duration_seconds` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_seconds: Option<u64>,
    /// A grant needs an allowed approver (see `policy::approval`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_approver: bool,
    /// Who may approve; empty means anyone but the requester. Compared as identities (trimmed, any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// A request with `"break_glass": true` may go without an approver; the grant is flagged for review.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_break_glass: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub auth: Auth,
    #[serde(default, skip_serializing_if = "is_default")]
    pub credential_delivery: CredentialDelivery,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Config {
    /// Parses and validates the document. Every rule about what a valid config is lives here.
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        let mut config: Config =
            serde_json::from_slice(json).map_err(|e| ConfigError(format!("config document: {e}")))?;
        for db in config.databases.values_mut().filter(|db| db.port == 0) {
            db.port = db.engine.default_port();
        }
        config.validate()?;
        Ok(config)
    }

    /// The NOLOGIN role every temporary user is a member of, so orphans can be found from inside the database.
    pub fn marker_role(&self) -> String {
        naming::marker_role(&self.user_prefix)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.user_prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= MAX_USER_PREFIX_BYTES
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !prefix_ok {
            return Err(ConfigError(format!(
                "user_prefix must be 1-{MAX_USER_PREFIX_BYTES} characters of a-z, 0-9 and _, starting with a letter"
            )));
        }
        for (db_name, db) in &self.databases {
            let at = |field: &str| format!("databases.{db_name}.{field}");
            if db.host.is_empty() || db.dbname.is_empty() {
                return Err(ConfigError(format!("{} must name host and dbname", at(""))));
            }
            if db.readers.iter().any(|r| r.host.is_empty() || r.port == Some(0)) {
                return Err(ConfigError(format!("{} must each name a host (and a port other than 0)", at("readers"))));
            }
            if db.configured_readers().contains(&db.writer()) {
                return Err(ConfigError(format!("{} must not name the database's own host and port", at("readers"))));
            }
            if let Some(id) = db.cluster_identifier.as_deref().filter(|id| !valid_cluster_identifier(id)) {
                return Err(ConfigError(format!(
                    "{} {id:?} is not an RDS cluster identifier (1-63 letters, digits and hyphens)",
                    at("cluster_identifier")
                )));
            }
            if db.engine == Engine::Mysql {
                check_mysql(db).map_err(|(field, e)| ConfigError(format!("{} {e}", at(field))))?;
            }
            let admin = db.admin().map_err(|e| ConfigError(format!("databases.{db_name} {e}")))?;
            check_admin_source(admin, db.sslmode).map_err(|(field, e)| ConfigError(format!("{} {e}", at(field))))?;
            for (target_name, target) in &db.targets {
                target
                    .validate()
                    .map_err(|e| ConfigError(format!("{}: {e}", at(&format!("targets.{target_name}")))))?;
            }
        }
        Ok(())
    }
}

/// What MySQL cannot do as PostgreSQL does; on failure, the field at fault and why (README "Contract notes").
fn check_mysql(db: &DatabaseConfig) -> Result<(), (&'static str, String)> {
    if db.sslmode == SslMode::Require {
        // PostgreSQL's `require` is safe because the password only travels through SCRAM with channel binding;
        // MySQL has no channel binding, so an unverified server could relay the admin's login.
        return Err((
            "sslmode",
            "\"require\" is refused for engine mysql: MySQL authentication has no channel binding, so an \
             unverified server could relay the admin's login; use \"verify-ca\" or \"verify-full\""
                .into(),
        ));
    }
    if let Some((name, _)) = db.targets.iter().find(|(_, t)| t.auth == Auth::Iam) {
        return Err(("targets", format!("{name}: auth \"iam\" is not supported for engine mysql")));
    }
    if let Some(bad) =
        db.targets.values().flat_map(|t| &t.roles).find(|r| r.chars().count() > naming::MAX_MYSQL_USER_BYTES)
    {
        return Err((
            "targets",
            format!("role {bad:?} is longer than MySQL's {} characters", naming::MAX_MYSQL_USER_BYTES),
        ));
    }
    Ok(())
}

/// The rules for each admin credential source; on failure, the field at fault and why.
fn check_admin_source(admin: AdminSource, sslmode: SslMode) -> Result<(), (&'static str, String)> {
    match admin {
        AdminSource::S3Object(key)
            if !key.starts_with(ADMIN_SECRET_PREFIX) || key.len() == ADMIN_SECRET_PREFIX.len() =>
        {
            Err((
                "admin_secret_key",
                format!(
                    "must be an object under {ADMIN_SECRET_PREFIX} (only that prefix is protected from readers other \
                     than the Lambdas), not {key:?}"
                ),
            ))
        }
        AdminSource::Secret(arn) if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") => {
            Err(("admin_secret_arn", format!("must be a Secrets Manager secret ARN, not {arn:?}")))
        }
        AdminSource::IamUser(user) if naming::check_identifier(user).is_err() => {
            Err(("admin_iam_user", format!("{user:?} is not a valid PostgreSQL identifier")))
        }
        // The token travels as a cleartext password: only a verified server may see it.
        AdminSource::IamUser(_) if !matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull) => Err((
            "admin_iam_user",
            format!(
                "requires sslmode \"verify-ca\" or \"verify-full\", not {:?}: the IAM token is sent as a cleartext \
                 password, which an unverified server could capture and replay for 15 minutes",
                sslmode.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

impl TargetConfig {
    fn validate(&self) -> Result<(), String> {
        if self.roles.is_empty() {
            return Err("roles must name at least one role".into());
        }
        if let Some(bad) = self.roles.iter().find(|r| naming::check_identifier(r).is_err()) {
            return Err(format!("role {bad:?} is not a valid PostgreSQL identifier"));
        }
        if self.max_duration_seconds < MIN_DURATION_SECONDS {
            return Err(format!("max_duration_seconds must be at least {MIN_DURATION_SECONDS}"));
        }
        if let Some(default) = self.default_duration_seconds {
            if !(MIN_DURATION_SECONDS..=self.max_duration_seconds).contains(&default) {
                return Err(format!(
                    "default_duration_seconds must be between {MIN_DURATION_SECONDS} and max_duration_seconds"
                ));
            }
        }
        if self.max_extensions.is_some_and(|n| n > MAX_EXTENSIONS_LIMIT) {
            return Err(format!("max_extensions must be at most {MAX_EXTENSIONS_LIMIT}"));
        }
        if self.max_total_seconds.is_some_and(|total| total < self.max_duration_seconds) {
            return Err("max_total_seconds must be at least max_duration_seconds".into());
        }
        if self.connection_limit.is_some_and(|limit| limit < 1) {
            return Err("connection_limit must be at least 1".into());
        }
        if self.approvers.iter().any(|a| a.trim().is_empty()) {
            return Err("approvers must not contain an empty name".into());
        }
        if self.strategy == Strategy::RoleEscalation && (!self.statements.is_empty() || self.connection_limit.is_some())
        {
            // Both would change an existing user permanently, outliving the grant.
            return Err("statements and connection_limit are only allowed for temp_user targets".into());
        }
        if self.strategy == Strategy::RoleEscalation
            && (self.auth != Auth::default() || self.credential_delivery != CredentialDelivery::default())
        {
            // An existing user keeps its own way of logging in; there is nothing to deliver.
            return Err("auth and credential_delivery are only allowed for temp_user targets".into());
        }
        Ok(())
    }

    pub fn extension_limits(&self) -> ExtensionLimits {
        ExtensionLimits {
            max_extensions: self.max_extensions.unwrap_or(DEFAULT_MAX_EXTENSIONS),
            max_total_seconds: self.max_total_seconds.unwrap_or(self.max_duration_seconds.saturating_mul(4)),
        }
    }

    pub fn default_duration_seconds(&self) -> u64 {
        self.default_duration_seconds.unwrap_or(FALLBACK_DEFAULT_DURATION_SECONDS.min(self.max_duration_seconds))
    }
}

/// The admin ("bot") user's credentials: the S3 object named by `admin_secret_key` or the Secrets Manager secret
/// named by `admin_secret_arn`. Extra fields (as in an RDS-managed master user secret) are allowed; the password never appears in Debug output.
#[derive(Clone, Deserialize)]
pub struct AdminCredentials {
    pub username: String,
    pub password: String,
}

impl AdminCredentials {
    pub fn parse(json: &[u8]) -> Result<AdminCredentials, ConfigError> {
        let creds: AdminCredentials = serde_json::from_slice(json).map_err(|_| {
            // serde's message could quote part of the secret, so it is not passed on.
            ConfigError("admin credentials object must be JSON with string fields username and password".into())
        })?;
        if creds.username.is_empty() || creds.password.is_empty() {
            return Err(ConfigError("admin credentials: username and password must not be empty".into()));
        }
        Ok(creds)
    }
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SPEC_EXAMPLE: &str = r#"{
      "user_prefix": "jit_",
      "databases": {
        "orders": {
          "host": "orders.cluster-abc.us-east-1.rds.amazonaws.com", "port": 5432, "dbname": "orders",
          "sslmode": "verify-full", "admin_secret_key": "secrets/orders-admin.json",
          "targets": {
            "readonly": {"strategy": "temp_user", "roles": ["readonly"],
              "statements": ["ALTER ROLE {username} SET statement_timeout = '60s'"],
              "default_duration_seconds": 3600, "max_duration_seconds": 14400, "connection_limit": 5},
            "dba": {"strategy": "role_escalation", "roles": ["dba"], "max_duration_seconds": 3600}
          }
        }
      }
    }"#;

    /// The SPEC example as a MySQL database, changed by `edit`.
    fn mysql(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Config, ConfigError> {
        let mut doc: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
        let orders = &mut doc["databases"]["orders"];
        orders["engine"] = "mysql".into();
        orders.as_object_mut().unwrap().remove("port");
        orders["targets"]["readonly"]["statements"] = serde_json::json!([]);
        edit(&mut doc);
        Config::parse(doc.to_string().as_bytes())
    }

    #[test]
    fn mysql_databases_default_to_3306_and_refuse_what_mysql_cannot_keep() {
        let config = mysql(|_| {}).unwrap();
        let orders = &config.databases["orders"];
        assert_eq!((orders.engine, orders.port), (Engine::Mysql, 3306));
        assert_eq!(Config::parse(SPEC_EXAMPLE.as_bytes()).unwrap().databases["orders"].engine, Engine::Postgres);
        let refused = |edit: fn(&mut serde_json::Value), words: &str| {
            let error = mysql(edit).unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
        };
        refused(|doc| doc["databases"]["orders"]["sslmode"] = "require".into(), "channel binding");
        let with_reader = mysql(|doc| doc["databases"]["orders"]["readers"] = serde_json::json!([{"host": "r1"}]));
        assert_eq!(with_reader.unwrap().databases["orders"].configured_readers()[0].port, 3306);
        refused(|doc| doc["databases"]["orders"]["targets"]["readonly"]["auth"] = "iam".into(), "iam");
        refused(
            |doc| doc["databases"]["orders"]["targets"]["dba"]["roles"] = serde_json::json!(["r".repeat(33)]),
            "32",
        );
        refused(|doc| doc["databases"]["orders"]["engine"] = "oracle".into(), "unknown variant");
        let name = Engine::Mysql.temp_username("jit_", "someone.with.a.long.name@example.com");
        assert!(name.len() <= 32, "{name}");
    }

    #[test]
    fn parses_the_spec_example() {
        let config = Config::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        let orders = &config.databases["orders"];
        assert_eq!(orders.sslmode, SslMode::VerifyFull);
        assert_eq!(orders.targets["dba"].strategy, Strategy::RoleEscalation);
        assert_eq!(orders.targets["dba"].default_duration_seconds(), 3600);
        assert_eq!(orders.targets["readonly"].connection_limit, Some(5));
        assert_eq!(config.marker_role(), "jit_managed");
    }

    #[test]
    fn unknown_fields_are_named_in_the_error() {
        let doc = SPEC_EXAMPLE.replace("\"max_duration_seconds\": 3600", "\"max_duraton_seconds\": 3600");
        let err = Config::parse(doc.as_bytes()).unwrap_err();
        assert!(err.0.contains("max_duraton_seconds"), "{err}");
    }

    #[test]
    fn escalation_targets_may_not_carry_statements() {
        let doc = SPEC_EXAMPLE
            .replace(r#""roles": ["dba"],"#, r#""roles": ["dba"], "statements": ["ALTER ROLE {username} SUPERUSER"],"#);
        let err = Config::parse(doc.as_bytes()).unwrap_err();
        assert!(err.0.contains("targets.dba"), "{err}");
    }

    #[test]
    fn rejects_bad_prefix_and_durations() {
        let bad_prefix = SPEC_EXAMPLE.replace("\"jit_\"", "\"JIT-\"");
        assert!(Config::parse(bad_prefix.as_bytes()).is_err());
        let default_above_max =
            SPEC_EXAMPLE.replace("\"default_duration_seconds\": 3600", "\"default_duration_seconds\": 99999");
        assert!(Config::parse(default_above_max.as_bytes()).is_err());
    }

    #[test]
    fn admin_secret_key_must_be_under_secrets() {
        for bad in ["orders-admin.json", "Secrets/orders-admin.json", "tls/orders-admin.json", "secrets/", "/secrets/x"]
        {
            let doc = SPEC_EXAMPLE.replace("\"secrets/orders-admin.json\"", &format!("{bad:?}"));
            let err = Config::parse(doc.as_bytes()).unwrap_err();
            assert!(
                err.0.contains("databases.orders.admin_secret_key must be an object under secrets/"),
                "{bad}: {err}"
            );
            assert!(err.0.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        let nested = SPEC_EXAMPLE.replace("secrets/orders-admin.json", "secrets/prod/orders-admin.json");
        assert!(Config::parse(nested.as_bytes()).is_ok());
    }

    #[test]
    fn readers_take_the_database_port_and_name_and_label_themselves() {
        let doc = SPEC_EXAMPLE.replace(
            r#""sslmode": "verify-full","#,
            r#""sslmode": "verify-full", "readers": [{"host": "r1"}, {"host": "r2", "port": 6432}],
               "cluster_identifier": "orders-prod","#,
        );
        let orders = Config::parse(doc.as_bytes()).unwrap().databases["orders"].clone();
        let readers = orders.configured_readers();
        assert_eq!(readers.iter().map(|r| (r.host.as_str(), r.port)).collect::<Vec<_>>(), [("r1", 5432), ("r2", 6432)]);
        assert!(readers.iter().all(|r| r.dbname == "orders"));
        assert_eq!(orders.writer().label("orders", &orders), "orders");
        assert_eq!(readers[1].label("orders", &orders), "orders on r2:6432");
        assert_eq!(orders.writer().in_database("audit").label("orders", &orders), "orders, database \"audit\"");
        let writer = r#""readers": [{"host": "orders.cluster-abc.us-east-1.rds.amazonaws.com"}],"#;
        for bad in [r#""readers": [{"host": ""}],"#, r#""readers": [{"host": "r", "weight": 1}],"#, writer] {
            let doc =
                SPEC_EXAMPLE.replace(r#""sslmode": "verify-full","#, &format!(r#""sslmode": "verify-full", {bad}"#));
            assert!(Config::parse(doc.as_bytes()).is_err(), "{bad}");
        }
        for bad in ["", "1abc", "a_b", "ab-", "a--b"] {
            let doc = SPEC_EXAMPLE.replace(
                r#""sslmode": "verify-full","#,
                &format!(r#""sslmode": "verify-full", "cluster_identifier": {bad:?},"#),
            );
            let err = Config::parse(doc.as_bytes()).unwrap_err();
            assert!(err.0.contains("databases.orders.cluster_identifier"), "{bad}: {err}");
        }
    }

    #[test]
    fn exactly_one_admin_credential_source() {
        let key = r#""admin_secret_key": "secrets/orders-admin.json""#;
        let arn = r#""admin_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1-AbCd""#;
        let iam = r#""admin_iam_user": "jit_admin""#;
        let parsed = |fields: &str| Config::parse(SPEC_EXAMPLE.replace(key, fields).as_bytes());
        let config = parsed(arn).unwrap();
        assert!(matches!(config.databases["orders"].admin(), Ok(AdminSource::Secret(a)) if a.contains("rds!cluster")));
        assert_eq!(parsed(iam).unwrap().databases["orders"].admin(), Ok(AdminSource::IamUser("jit_admin")));
        for fields in [format!("{key}, {arn}"), format!("{arn}, {iam}"), r#""ca_bundle_key": "tls/ca.pem""#.to_string()]
        {
            let err = parsed(&fields).unwrap_err();
            assert!(err.0.contains("databases.orders must name exactly one of admin_secret_key"), "{fields}: {err}");
        }
        let err = parsed(r#""admin_secret_arn": "secrets/orders-admin.json""#).unwrap_err();
        assert!(err.0.contains("admin_secret_arn must be a Secrets Manager secret ARN"), "{err}");
    }

    #[test]
    fn iam_admin_requires_a_verified_server() {
        let iam =
            SPEC_EXAMPLE.replace(r#""admin_secret_key": "secrets/orders-admin.json""#, r#""admin_iam_user": "bot""#);
        assert!(Config::parse(iam.replace("\"verify-full\"", "\"verify-ca\"").as_bytes()).is_ok());
        for weak in ["require", "disable"] {
            let err = Config::parse(iam.replace("\"verify-full\"", &format!("{weak:?}")).as_bytes()).unwrap_err();
            assert!(err.0.contains("admin_iam_user requires sslmode \"verify-ca\" or \"verify-full\""), "{err}");
        }
    }

    #[test]
    fn auth_and_delivery_are_for_temporary_users() {
        let readonly = r#""connection_limit": 5"#;
        let doc =
            SPEC_EXAMPLE.replace(readonly, r#""connection_limit": 5, "auth": "iam", "credential_delivery": "ssm""#);
        let target = &Config::parse(doc.as_bytes()).unwrap().databases["orders"].targets["readonly"];
        assert_eq!((target.auth, target.credential_delivery), (Auth::Iam, CredentialDelivery::Ssm));
        let defaults = &Config::parse(SPEC_EXAMPLE.as_bytes()).unwrap().databases["orders"].targets["readonly"];
        assert_eq!((defaults.auth, defaults.credential_delivery), (Auth::Password, CredentialDelivery::Response));
        let dba = r#""roles": ["dba"],"#;
        for option in [r#""auth": "iam","#, r#""credential_delivery": "secrets_manager","#] {
            let err = Config::parse(SPEC_EXAMPLE.replace(dba, &format!("{dba} {option}")).as_bytes()).unwrap_err();
            assert!(err.0.contains("only allowed for temp_user targets"), "{err}");
        }
        let err = Config::parse(doc.replace("\"ssm\"", "\"email\"").as_bytes()).unwrap_err();
        assert!(err.0.contains("email"), "{err}");
    }

    #[test]
    fn sslmode_names_round_trip() {
        for mode in SslMode::ALL {
            assert_eq!(SslMode::parse(mode.as_str()), Ok(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), serde_json::json!(mode.as_str()));
        }
        let doc = SPEC_EXAMPLE.replace("\"verify-full\"", "\"verify-ca\"");
        assert_eq!(Config::parse(doc.as_bytes()).unwrap().databases["orders"].sslmode, SslMode::VerifyCa);
    }

    #[test]
    fn downgradable_sslmodes_are_refused_with_the_reason() {
        for refused in ["allow", "prefer"] {
            let doc = SPEC_EXAMPLE.replace("\"verify-full\"", &format!("{refused:?}"));
            let err = Config::parse(doc.as_bytes()).unwrap_err();
            for expected in [refused, "downgrade", "by an attacker", "\"require\", \"verify-ca\" or \"verify-full\""] {
                assert!(err.0.contains(expected), "{expected:?} not in: {err}");
            }
        }
        let doc = SPEC_EXAMPLE.replace("\"verify-full\"", "\"verify_full\"");
        let err = Config::parse(doc.as_bytes()).unwrap_err();
        assert!(err.0.contains("unknown sslmode \"verify_full\"") && err.0.contains("\"verify-ca\""), "{err}");
    }

    #[test]
    fn admin_credentials_never_print_the_password() {
        let creds = AdminCredentials::parse(br#"{"username":"bot","password":"hunter2","engine":"postgres"}"#).unwrap();
        assert!(!format!("{creds:?}").contains("hunter2"));
        let err = AdminCredentials::parse(br#"{"username":"bot","password":42}"#).unwrap_err();
        assert!(!err.0.contains("42"));
    }
}
