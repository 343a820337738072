//! Reading `AtomicworkMcpServer` and `Secret` manifests from files, as local mode does.
//! One bad document is reported with its file and position and skipped; the rest load.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use serde_json::Value;

use crate::crd::AtomicworkMcpServer;
use crate::resolve::{SecretData, SecretLookup, secret_data};

/// Namespace given to objects whose manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A manifest document that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    /// 1-based document number within the file.
    pub document: usize,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (document {}): {}",
            self.file, self.document, self.message
        )
    }
}

/// Everything read from a set of manifest files.
#[derive(Debug, Default)]
pub struct Manifests {
    pub servers: Vec<AtomicworkMcpServer>,
    pub secrets: BTreeMap<(String, String), SecretData>,
    pub errors: Vec<ManifestError>,
}

impl SecretLookup for Manifests {
    fn secret(&self, namespace: &str, name: &str) -> Option<SecretData> {
        self.secrets.secret(namespace, name)
    }
}

/// The YAML/JSON files under `path` (itself, if a file), sorted for a stable load order.
pub fn manifest_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    collect(path, &mut out)?;
    out.sort();
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every manifest under `path`.
pub fn load(path: &Path) -> Manifests {
    let mut m = Manifests::default();
    let files = match manifest_files(path) {
        Ok(files) => files,
        Err(e) => {
            m.errors.push(ManifestError {
                file: path.display().to_string(),
                document: 0,
                message: format!("cannot read: {e}"),
            });
            return m;
        }
    };
    for file in files {
        let label = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => parse_into(&text, &label, &mut m),
            Err(e) => m.errors.push(ManifestError {
                file: label,
                document: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    m
}

/// Splits a multi-document YAML stream at `---` lines.
pub fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        if t == "..." {
            continue;
        }
        if let Some(cur) = docs.last_mut() {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

/// Parses one file's text, adding what it holds to `m`.
pub fn parse_into(text: &str, file: &str, m: &mut Manifests) {
    for (i, doc) in documents(text).iter().enumerate() {
        let document = i + 1;
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        if let Err(message) = parse_document(doc, m) {
            m.errors.push(ManifestError {
                file: file.to_string(),
                document,
                message,
            });
        }
    }
}

fn parse_document(doc: &str, m: &mut Manifests) -> Result<(), String> {
    let generic: Value = serde_saphyr::from_str(doc).map_err(|e| format!("not valid YAML: {e}"))?;
    let kind = generic
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = generic
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (api_version, kind) {
        ("mcp.atomicwork.dev/v1alpha1", "AtomicworkMcpServer") => {
            let mut server: AtomicworkMcpServer =
                serde_saphyr::from_str(doc).map_err(|e| format!("AtomicworkMcpServer: {e}"))?;
            let name = server.metadata.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err("AtomicworkMcpServer: metadata.name is required".into());
            }
            server
                .metadata
                .namespace
                .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string());
            let duplicate = m.servers.iter().any(|s| {
                s.metadata.name == server.metadata.name
                    && s.metadata.namespace == server.metadata.namespace
            });
            if duplicate {
                return Err(format!(
                    "AtomicworkMcpServer {}/{name} is defined twice; the first definition is used",
                    server.metadata.namespace.as_deref().unwrap_or_default()
                ));
            }
            m.servers.push(server);
            Ok(())
        }
        ("v1", "Secret") => {
            let secret: K8sSecret =
                serde_saphyr::from_str(doc).map_err(|e| format!("Secret: {e}"))?;
            let name = secret.metadata.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err("Secret: metadata.name is required".into());
            }
            let ns = secret
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
            m.secrets.insert((ns, name), secret_data(&secret));
            Ok(())
        }
        ("", _) | (_, "") => {
            Err("not a Kubernetes object: apiVersion and kind are required".into())
        }
        (api, "AtomicworkMcpServer") => Err(format!(
            "apiVersion {api:?} is not served; use mcp.atomicwork.dev/v1alpha1"
        )),
        // Other kinds (Namespaces, Deployments, ...) may share the files; they are not ours.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_secrets_from_data_and_string_data() {
        let mut m = Manifests::default();
        parse_into(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: x}\ndata: {k: aGVsbG8=}\nstringData: {s: plain}\n",
            "f.yaml",
            &mut m,
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let data = m.secret("x", "a").expect("secret");
        assert_eq!(data["k"], b"hello");
        assert_eq!(data["s"], b"plain");
    }

    #[test]
    fn a_bad_document_is_reported_and_the_others_load() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: good}\nstringData: {apiKey: k}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: broken}\nspec:\n  toolExposure: everything\n---\n: : :\n";
        let mut m = Manifests::default();
        parse_into(text, "mixed.yaml", &mut m);
        assert!(m.secret(DEFAULT_NAMESPACE, "good").is_some());
        assert_eq!(m.errors.len(), 2, "{:?}", m.errors);
        assert_eq!(m.errors[0].document, 2);
        assert!(m.errors[0].to_string().contains("mixed.yaml (document 2)"));
        assert_eq!(m.errors[1].document, 3);
    }

    #[test]
    fn other_kinds_are_ignored() {
        let mut m = Manifests::default();
        parse_into(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: it-ops}\n",
            "ns.yaml",
            &mut m,
        );
        assert!(m.errors.is_empty() && m.servers.is_empty());
    }
}
