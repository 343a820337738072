//! Checks of an `AtomicworkMcpServer` against the CRD's own generated schema, so that a
//! manifest means the same in a cluster and in local mode: the bounds of every field
//! (enforced by the API server in a cluster, and by [`check_bounds`] wherever a resource
//! is resolved) and the set of known fields (an API server prunes unknown ones; local mode
//! reports them with [`unknown_fields`]).

use std::fmt;
use std::sync::LazyLock;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::k8s::crd::{
    AtomicworkMcpServer, AtomicworkMcpServerSpec, OAUTH_OR_BEARER_MESSAGE,
    PER_USER_NEEDS_OAUTH_MESSAGE,
};
use crate::k8s::yaml_lines::{Node, NodeValue};

/// The CRD's `openAPIV3Schema`, as generated from the types in [`crate::k8s::crd`].
static SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let crd = AtomicworkMcpServer::crd();
    crd.spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
});

/// A validator of `spec` built from the CRD schema, or why it could not be built.
static SPEC_VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    jsonschema::validator_for(&whole_numbers(spec_schema().clone())).map_err(|e| e.to_string())
});

/// The schema with whole floating-point numbers (`minimum: 1000.0`, as generated) written
/// as integers, so that messages say "the minimum of 1000".
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The schema of `spec`.
pub(crate) fn spec_schema() -> &'static Value {
    &SCHEMA["properties"]["spec"]
}

/// Checks a spec against the bounds, patterns and enumerations of the CRD schema (the
/// checks an API server applies on admission). The error lists every violation, each
/// starting with the field's path, e.g. `spec.maxResultChars: 0 is less than the minimum
/// of 1000`.
pub(crate) fn check_bounds(spec: &AtomicworkMcpServerSpec) -> Result<(), String> {
    let validator = SPEC_VALIDATOR
        .as_ref()
        .map_err(|e| format!("spec: the resource schema does not compile: {e}"))?;
    let instance = serde_json::to_value(spec).map_err(|e| format!("spec: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", field_path(&e.instance_path().to_string())))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Checks the rules across fields that the CRD states as CEL rules (`x-kubernetes-
/// validations`, enforced by API servers from 1.25 on), with the same messages, plus the
/// OAuth issuer's form in words clearer than its pattern's. The error starts with the
/// path of the field at fault.
pub(crate) fn check_rules(spec: &AtomicworkMcpServerSpec) -> Result<(), String> {
    let oauth = spec.auth.as_ref().and_then(|a| a.oauth.as_ref());
    if oauth.is_some() && spec.require_api_token_auth {
        return Err(OAUTH_OR_BEARER_MESSAGE.to_string());
    }
    if oauth.is_none() && spec.rate_limit.is_some_and(|r| r.per_user.is_some()) {
        return Err(PER_USER_NEEDS_OAUTH_MESSAGE.to_string());
    }
    if let Some(o) = oauth {
        crate::core::oauth::check_issuer(&o.issuer)
            .map_err(|why| format!("spec.auth.oauth.issuer {:?} {why}", o.issuer))?;
    }
    Ok(())
}

/// A JSON pointer into the spec (`/rateLimit/burst`, `/methods/0`) as a manifest path
/// (`spec.rateLimit.burst`, `spec.methods[0]`).
fn field_path(pointer: &str) -> String {
    let mut out = String::from("spec");
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// A key in a manifest's `spec` that the resource does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownField {
    /// Path of the key, e.g. `spec.rateLimit.burts`.
    pub(crate) path: String,
    /// Line of the key within its document (1-based; 0 if unknown).
    pub(crate) line: usize,
    /// The known field at the same place the key is probably a misspelling of.
    pub(crate) suggestion: Option<String>,
    /// Every field known at that place.
    pub(crate) known: Vec<String>,
}

impl fmt::Display for UnknownField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a field of AtomicworkMcpServer", self.path)?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => write!(f, " (fields here: {})", self.known.join(", ")),
        }
    }
}

/// Every key under `spec` (at any depth) that the CRD schema does not define, in document
/// order. `spec` is the YAML node of the manifest's `spec`.
pub(crate) fn unknown_fields(spec: &Node) -> Vec<UnknownField> {
    let mut out = Vec::new();
    walk(spec, spec_schema(), "spec", &mut out);
    out
}

fn walk(node: &Node, schema: &Value, path: &str, out: &mut Vec<UnknownField>) {
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match &node.value {
        NodeValue::Map(entries) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for entry in entries {
                let at = format!("{path}.{}", entry.key);
                match properties.get(&entry.key) {
                    Some(sub) => walk(&entry.value, sub, &at, out),
                    None => {
                        let known: Vec<String> = properties.keys().cloned().collect();
                        out.push(UnknownField {
                            suggestion: closest(&entry.key, &known).map(|k| format!("{path}.{k}")),
                            path: at,
                            line: entry.line,
                            known,
                        });
                    }
                }
            }
        }
        NodeValue::Seq(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                walk(item, item_schema, &format!("{path}[{i}]"), out);
            }
        }
        NodeValue::Scalar(_) => {}
    }
}

/// The known name `key` is most likely a misspelling of: the same but for letter case, or
/// within a small edit distance.
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let key = key.to_lowercase();
    let allowed = (key.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (edit_distance(&key, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance counting an adjacent transposition as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> AtomicworkMcpServerSpec {
        serde_saphyr::from_str(&format!(
            "atomicwork: {{baseUrl: \"https://a.atomicwork.com\", apiKeySecretRef: {{name: s}}}}\n{yaml}"
        ))
        .expect("spec parses")
    }

    #[test]
    fn bounds_come_from_the_crd_schema() {
        assert_eq!(check_bounds(&spec("")), Ok(()));
        assert_eq!(
            check_bounds(&spec(
                "maxResultChars: 1000\nrateLimit: {requestsPerMinute: 1}"
            )),
            Ok(())
        );
        let cases = [
            ("maxResultChars: 0", "spec.maxResultChars"),
            ("maxResultChars: 10000001", "spec.maxResultChars"),
            (
                "rateLimit: {requestsPerMinute: 0}",
                "spec.rateLimit.requestsPerMinute",
            ),
            (
                "rateLimit: {requestsPerMinute: 5, burst: 0}",
                "spec.rateLimit.burst",
            ),
            ("retry: {maxAttempts: 6}", "spec.retry.maxAttempts"),
            (
                "retry: {maxAttempts: 2, maxBackoffSeconds: 0}",
                "spec.retry.maxBackoffSeconds",
            ),
            (
                "apiTokenSecretRef: {name: \"\"}",
                "spec.apiTokenSecretRef.name",
            ),
        ];
        for (yaml, field) in cases {
            let e = check_bounds(&spec(yaml)).expect_err(yaml);
            assert!(e.starts_with(&format!("{field}: ")), "{yaml}: {e}");
        }
        let mut s = spec("");
        s.atomicwork.timeout_seconds = Some(100_000);
        let e = check_bounds(&s).expect_err("timeout");
        assert_eq!(
            e,
            "spec.atomicwork.timeoutSeconds: 100000 is greater than the maximum of 300"
        );
        s.atomicwork.base_url = "ftp://a.atomicwork.com".into();
        let e = check_bounds(&s).expect_err("two problems");
        assert!(e.contains("spec.atomicwork.baseUrl"), "{e}");
        assert!(e.contains("spec.atomicwork.timeoutSeconds"), "{e}");
    }

    #[test]
    fn every_bounded_field_of_the_schema_is_checked() {
        // Walks the generated schema: every numeric bound it declares is enforced.
        fn bounded(schema: &Value, path: String, out: &mut Vec<(String, f64)>) {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && min > 0.0
            {
                out.push((path.clone(), min));
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    bounded(v, format!("{path}.{k}"), out);
                }
            }
        }
        let mut fields = Vec::new();
        bounded(spec_schema(), "spec".into(), &mut fields);
        assert!(fields.len() >= 6, "{fields:?}");
        for (path, min) in fields {
            // Set the field below its minimum in an otherwise valid spec.
            let mut value = serde_json::to_value(spec(
                "rateLimit: {requestsPerMinute: 5, perUser: {requestsPerMinute: 5}}\nretry: {maxAttempts: 2}",
            ))
            .expect("json");
            let mut at = &mut value;
            let keys: Vec<&str> = path.split('.').skip(1).collect();
            for k in &keys[..keys.len() - 1] {
                at = &mut at[*k];
            }
            at[keys[keys.len() - 1]] = Value::from(min as u64 - 1);
            let s: AtomicworkMcpServerSpec = serde_json::from_value(value).expect(&path);
            let e = check_bounds(&s).expect_err(&path);
            assert!(e.starts_with(&format!("{path}: ")), "{path}: {e}");
        }
    }

    #[test]
    fn the_crd_rules_are_checked_with_the_same_messages() {
        use crate::k8s::crd::{OAUTH_OR_BEARER_RULE, PER_USER_NEEDS_OAUTH_RULE};
        let rules = spec_schema()["x-kubernetes-validations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            rules,
            [
                serde_json::json!({"rule": OAUTH_OR_BEARER_RULE, "message": OAUTH_OR_BEARER_MESSAGE}),
                serde_json::json!({"rule": PER_USER_NEEDS_OAUTH_RULE, "message": PER_USER_NEEDS_OAUTH_MESSAGE}),
            ]
        );
        let oauth = "auth: {oauth: {issuer: \"https://idp.example.com\"}}";
        assert_eq!(check_rules(&spec(oauth)), Ok(()));
        assert_eq!(
            check_rules(&spec(&format!(
                "{oauth}\nrateLimit: {{requestsPerMinute: 5, perUser: {{requestsPerMinute: 1}}}}"
            ))),
            Ok(())
        );
        assert_eq!(
            check_rules(&spec(
                "requireApiTokenAuth: true\napiTokenSecretRef: {name: t}"
            )),
            Ok(())
        );
        assert_eq!(
            check_rules(&spec(&format!("{oauth}\nrequireApiTokenAuth: true"))),
            Err(OAUTH_OR_BEARER_MESSAGE.to_string())
        );
        // The rule is about the flag: naming a token Secret alone is not a conflict.
        assert_eq!(
            check_rules(&spec(&format!(
                "{oauth}\nrequireApiTokenAuth: false\napiTokenSecretRef: {{name: t}}"
            ))),
            Ok(())
        );
        assert_eq!(
            check_rules(&spec(
                "rateLimit: {requestsPerMinute: 5, perUser: {requestsPerMinute: 1}}"
            )),
            Err(PER_USER_NEEDS_OAUTH_MESSAGE.to_string())
        );
        assert_eq!(
            check_rules(&spec(
                "auth: {}\nrateLimit: {requestsPerMinute: 5, perUser: {requestsPerMinute: 1}}"
            )),
            Err(PER_USER_NEEDS_OAUTH_MESSAGE.to_string())
        );
        let e = check_rules(&spec("auth: {oauth: {issuer: \"http://idp.example.com\"}}"))
            .expect_err("http");
        assert!(e.starts_with("spec.auth.oauth.issuer "), "{e}");
    }

    /// The issuer's pattern in the CRD (what an API server checks) and the check in code
    /// agree on every example.
    #[test]
    fn the_issuer_pattern_and_the_issuer_check_agree() {
        for issuer in [
            "https://idp.example.com",
            "https://idp.example.com/realms/it",
            "http://localhost:8080/x",
            "http://127.0.0.1",
            "http://[::1]:9",
            "http://idp.example.com",
            "http://localhost.example.com",
            "http://127.0.0.2",
            "https://idp.example.com?x",
            "https://idp.example.com#x",
            "https://u@idp.example.com",
            "https:///x",
            "ftp://idp.example.com",
        ] {
            let s = spec(&format!("auth: {{oauth: {{issuer: \"{issuer}\"}}}}"));
            assert_eq!(
                check_bounds(&s).is_ok(),
                crate::core::oauth::check_issuer(issuer).is_ok(),
                "{issuer}: {:?}",
                check_bounds(&s)
            );
        }
    }

    fn unknown(yaml: &str) -> Vec<UnknownField> {
        let node = Node::parse(yaml).expect("yaml");
        unknown_fields(&node)
    }

    #[test]
    fn unknown_fields_at_any_depth_with_a_suggestion() {
        let found = unknown(
            "atomicwork:\n  baseUrl: x\n  timeoutSecond: 3\nmetods: [read]\nrateLimit:\n  requestsPerMinute: 5\n  burts: 2\ntools:\n  allow: []\n  denny: []\nsuspend: true\nRequireApiTokenAuth: true\nzzz: 1\n",
        );
        let got: Vec<(&str, usize, Option<&str>)> = found
            .iter()
            .map(|f| (f.path.as_str(), f.line, f.suggestion.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "spec.atomicwork.timeoutSecond",
                    3,
                    Some("spec.atomicwork.timeoutSeconds")
                ),
                ("spec.metods", 4, Some("spec.methods")),
                ("spec.rateLimit.burts", 7, Some("spec.rateLimit.burst")),
                ("spec.tools.denny", 10, Some("spec.tools.deny")),
                (
                    "spec.RequireApiTokenAuth",
                    12,
                    Some("spec.requireApiTokenAuth")
                ),
                ("spec.zzz", 13, None),
            ]
        );
        let in_auth =
            unknown("auth:\n  oath: {issuer: x}\n  oauth: {issuer: x, scope: {}, userclaim: e}\n");
        let got: Vec<(&str, Option<&str>)> = in_auth
            .iter()
            .map(|f| (f.path.as_str(), f.suggestion.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("spec.auth.oath", Some("spec.auth.oauth")),
                ("spec.auth.oauth.scope", Some("spec.auth.oauth.scopes")),
                (
                    "spec.auth.oauth.userclaim",
                    Some("spec.auth.oauth.userClaim")
                ),
            ]
        );
        let last = found.last().expect("zzz").to_string();
        assert!(
            last.contains("spec.zzz is not a field") && last.contains("methods"),
            "{last}"
        );
        assert_eq!(
            found[1].to_string(),
            "spec.metods is not a field of AtomicworkMcpServer; did you mean spec.methods?"
        );
    }

    #[test]
    fn known_fields_come_from_the_schema_and_pass() {
        let yaml = "displayName: x\natomicwork: {baseUrl: y, apiKeySecretRef: {name: s, key: k}, workspaceId: \"1\", timeoutSeconds: 3}\nmethods: [read]\ntags: [assets]\ntools: {allow: [a], deny: [b]}\ntoolExposure: all\nexpiresAt: z\nrequireApiTokenAuth: false\napiTokenSecretRef: {name: t}\ndryRun: true\nrateLimit: {requestsPerMinute: 5, burst: 1, perUser: {requestsPerMinute: 2, burst: 1}}\nretry: {maxAttempts: 2, maxBackoffSeconds: 3}\nmaxResultChars: 5000\nsuspend: false\nauth:\n  oauth: {issuer: i, audience: a, userClaim: email, scopes: {read: [r], write: [w], custom: [c]}}\n";
        assert_eq!(unknown(yaml), []);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("methods", "metods"), 1);
        assert_eq!(edit_distance("burst", "burts"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            closest("tgas", &["tags".into(), "tools".into()]),
            Some("tags")
        );
        assert_eq!(closest("unrelated", &["tags".into()]), None);
    }
}
