//! Reading `AtomicworkMcpServer` and `Secret` manifests from files, as local mode does.
//! One bad document is reported with its file, document number and file line, and
//! skipped; the rest load. Keys the resource does not define are errors, never dropped in
//! silence. What could not be read at all is kept apart from what was read and is bad, so
//! that local mode can tell a transient read failure from a server that is gone.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret as K8sSecret;

use crate::core::server::ServerId;
use crate::k8s::crd::AtomicworkMcpServer;
use crate::k8s::resolve::{SecretData, SecretLookup, secret_data};
use crate::k8s::yaml_lines::Node;

/// Namespace given to objects whose manifest names none.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// A manifest document (or file) that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub(crate) file: String,
    /// 1-based document number within the file; 0 for the file as a whole.
    pub(crate) document: usize,
    /// 1-based line within the file, when known.
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

impl ManifestError {
    /// A problem with a whole file or directory rather than one document.
    fn file(file: impl Into<String>, message: String) -> Self {
        ManifestError {
            file: file.into(),
            document: 0,
            line: None,
            message,
        }
    }

    /// Where the problem is: `file (document N, line L)`.
    pub(crate) fn place(&self) -> String {
        match (self.document, self.line) {
            (0, _) => self.file.clone(),
            (d, Some(l)) => format!("{} (document {d}, line {l})", self.file),
            (d, None) => format!("{} (document {d})", self.file),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place(), self.message)
    }
}

/// Where a server is defined: its file, its document and the lines of its fields.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) file: String,
    /// 1-based document number within the file.
    pub(crate) document: usize,
    /// File line the document starts on.
    first_line: usize,
    /// The document's keys with their lines.
    node: Option<Arc<Node>>,
}

impl Origin {
    /// The file line of `field` (a path such as `spec.rateLimit.burst`), or of its closest
    /// parent that is written; without a field, the line of `spec`.
    pub(crate) fn line_of(&self, field: Option<&str>) -> usize {
        let relative = self.node.as_ref().map_or(0, |node| {
            match field.map(|f| node.line_of(f)).unwrap_or(0) {
                0 => node.line_of("spec"),
                line => line,
            }
        });
        file_line(self.first_line, relative)
    }

    /// `file (document N, line L)` for `field`, as in [`ManifestError::place`].
    pub(crate) fn place(&self, field: Option<&str>) -> String {
        format!(
            "{} (document {}, line {})",
            self.file,
            self.document,
            self.line_of(field)
        )
    }
}

/// The file line of a line within a document that starts on `first_line` (a relative line
/// of 0, unknown, gives the document's first line).
fn file_line(first_line: usize, relative: usize) -> usize {
    first_line + relative.saturating_sub(1)
}

/// Everything read from a set of manifest files.
#[derive(Debug, Default)]
pub struct Manifests {
    pub servers: Vec<AtomicworkMcpServer>,
    pub(crate) secrets: BTreeMap<(String, String), SecretData>,
    /// Documents and files that were read but could not be used.
    pub errors: Vec<ManifestError>,
    /// Where each server in `servers` is defined.
    pub(crate) origins: BTreeMap<ServerId, Origin>,
    /// Servers named by a document that could not be used, with its first error: they
    /// exist, but are not served until that document is fixed.
    pub(crate) broken: BTreeMap<ServerId, ManifestError>,
    /// Documents that failed before they showed which object they define (not YAML,
    /// no kind or name): any server could be among them.
    pub(crate) unidentified: usize,
    /// What could not be read at all (the directory, or a file that exists): when not
    /// empty, the other fields describe only part of the manifests.
    pub(crate) unreadable: Vec<ManifestError>,
}

impl SecretLookup for Manifests {
    fn secret(&self, namespace: &str, name: &str) -> Option<SecretData> {
        self.secrets.secret(namespace, name)
    }
}

/// The manifest files under a path, and the symbolic-link loops found on the way.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// YAML/JSON files, sorted for a stable load order.
    pub(crate) files: Vec<PathBuf>,
    /// One entry per link that leads back into a directory being read; not followed.
    pub(crate) loops: Vec<ManifestError>,
}

/// The YAML/JSON files under `path` (itself, if a file), sorted for a stable load order.
pub fn manifest_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    scan(path).map(|s| s.files)
}

/// Lists the manifest files under `path` (itself, if a file). Directories are followed
/// through symbolic links once each: a link back into a directory being read is reported
/// as a loop, and a directory reached a second way is not read twice.
pub(crate) fn scan(path: &Path) -> std::io::Result<Scan> {
    let mut out = Scan::default();
    if path.is_file() {
        out.files.push(path.to_path_buf());
        return Ok(out);
    }
    let root = std::fs::canonicalize(path)?;
    let mut seen = HashSet::from([root.clone()]);
    let mut stack = vec![root];
    collect(path, &mut stack, &mut seen, &mut out)?;
    out.files.sort();
    Ok(out)
}

/// Adds the files under `dir` to `out`. `stack` holds the real paths of the directories
/// being read (`dir`'s last), `seen` every directory read so far.
fn collect(
    dir: &Path,
    stack: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    out: &mut Scan,
) -> std::io::Result<()> {
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
            let real = std::fs::canonicalize(&path)?;
            if stack.contains(&real) {
                out.loops.push(ManifestError::file(
                    path.display().to_string(),
                    format!(
                        "symbolic link loop back to {}; not followed",
                        real.display()
                    ),
                ));
                continue;
            }
            if !seen.insert(real.clone()) {
                continue;
            }
            stack.push(real);
            let result = collect(&path, stack, seen, out);
            stack.pop();
            result?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.files.push(path);
        }
    }
    Ok(())
}

/// Reads one manifest file's text.
pub(crate) type ReadFile = dyn Fn(&Path) -> std::io::Result<String> + Send + Sync;

/// Loads every manifest under `path`.
pub fn load(path: &Path) -> Manifests {
    load_with(path, &|p: &Path| std::fs::read_to_string(p))
}

/// Loads every manifest under `path`, reading each file with `read`.
pub(crate) fn load_with(path: &Path, read: &ReadFile) -> Manifests {
    let mut m = Manifests::default();
    let scan = match scan(path) {
        Ok(scan) => scan,
        Err(e) => {
            m.unreadable.push(ManifestError::file(
                path.display().to_string(),
                format!("cannot read: {e}"),
            ));
            return m;
        }
    };
    m.errors.extend(scan.loops);
    for file in scan.files {
        let label = file.display().to_string();
        match read(&file) {
            Ok(text) => parse_into(&text, &label, &mut m),
            // Removed since it was listed: it is simply not there any more, unless it
            // is a link to a file that is missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(&file).is_ok() {
                    m.errors
                        .push(ManifestError::file(label, format!("cannot read: {e}")));
                }
            }
            // Read, but not text: a bad file rather than a read failure.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                m.unidentified += 1;
                m.errors
                    .push(ManifestError::file(label, format!("not UTF-8 text: {e}")));
            }
            Err(e) => m
                .unreadable
                .push(ManifestError::file(label, format!("cannot read: {e}"))),
        }
    }
    m
}

/// Splits a multi-document YAML stream at `---` lines.
pub fn documents(text: &str) -> Vec<String> {
    split_documents(text).into_iter().map(|(_, d)| d).collect()
}

/// Splits a multi-document YAML stream at `---` lines, each document with the file line
/// it starts on.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push((i + 2, String::new()));
            continue;
        }
        if let Some((_, cur)) = docs.last_mut() {
            // `...` ends a document; keep the line (empty) so lines still count from
            // the document's start.
            if t != "..." {
                cur.push_str(line);
            }
            cur.push('\n');
        }
    }
    docs
}

/// What a document that could not be used was about.
enum Identity {
    /// It failed before showing what it defines.
    Unknown,
    /// It names this server.
    Server(ServerId),
    /// Something other than a server.
    Other,
}

/// A document that could not be used: what it was, and its problems with their lines
/// (relative to the document; 0 when unknown).
struct Failure {
    identity: Identity,
    problems: Vec<(usize, String)>,
}

impl Failure {
    fn one(identity: Identity, line: usize, message: String) -> Self {
        Failure {
            identity,
            problems: vec![(line, message)],
        }
    }
}

/// A usable document.
enum Parsed {
    Server(Box<AtomicworkMcpServer>, Node),
    Secret((String, String), SecretData),
    /// Another kind of object, not ours.
    Other,
}

/// Parses one file's text, adding what it holds to `m`.
pub fn parse_into(text: &str, file: &str, m: &mut Manifests) {
    for (i, (first_line, doc)) in split_documents(text).into_iter().enumerate() {
        let document = i + 1;
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        let error = |line: usize, message: String| ManifestError {
            file: file.to_string(),
            document,
            line: Some(file_line(first_line, line)),
            message,
        };
        match parse_document(&doc) {
            Ok(Parsed::Server(server, node)) => {
                let id = ServerId::new(
                    server
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
                    server.metadata.name.clone().unwrap_or_default(),
                );
                if m.origins.contains_key(&id) {
                    m.errors.push(error(
                        node.line_of("metadata.name"),
                        format!(
                            "AtomicworkMcpServer {id} is defined twice; the first definition is used"
                        ),
                    ));
                    continue;
                }
                m.origins.insert(
                    id,
                    Origin {
                        file: file.to_string(),
                        document,
                        first_line,
                        node: Some(Arc::new(node)),
                    },
                );
                m.servers.push(*server);
            }
            Ok(Parsed::Secret(key, data)) => {
                m.secrets.insert(key, data);
            }
            Ok(Parsed::Other) => {}
            Err(failure) => {
                let errors: Vec<ManifestError> = failure
                    .problems
                    .into_iter()
                    .map(|(line, message)| error(line, message))
                    .collect();
                match failure.identity {
                    Identity::Unknown => m.unidentified += 1,
                    Identity::Server(id) => {
                        if let Some(first) = errors.first() {
                            m.broken.entry(id).or_insert_with(|| first.clone());
                        }
                    }
                    Identity::Other => {}
                }
                m.errors.extend(errors);
            }
        }
    }
}

/// A YAML error's line (within the document) and message without its position.
fn yaml_problem(prefix: &str, e: &serde_saphyr::Error) -> (usize, String) {
    let location = e.location();
    let mut message = e.without_snippet().to_string();
    if let Some(l) = location {
        let suffix = format!(" at line {}, column {}", l.line(), l.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    let line = location
        .and_then(|l| usize::try_from(l.line()).ok())
        .unwrap_or(0);
    (line, format!("{prefix}{message}"))
}

fn parse_document(doc: &str) -> Result<Parsed, Failure> {
    let node = Node::parse(doc).map_err(|e| {
        let (line, message) = yaml_problem("not valid YAML: ", &e);
        Failure::one(Identity::Unknown, line, message)
    })?;
    let text = |path: &str| {
        path.split('.')
            .try_fold(&node, |n, key| n.get(key))
            .and_then(Node::as_str)
            .unwrap_or_default()
    };
    let (api_version, kind, name) = (text("apiVersion"), text("kind"), text("metadata.name"));
    let server_id = || {
        (!name.is_empty()).then(|| {
            let namespace = match text("metadata.namespace") {
                "" => DEFAULT_NAMESPACE,
                ns => ns,
            };
            Identity::Server(ServerId::new(namespace, name))
        })
    };
    match (api_version, kind) {
        ("mcp.atomicwork.dev/v1alpha1", "AtomicworkMcpServer") => {
            let Some(identity) = server_id() else {
                return Err(Failure::one(
                    Identity::Unknown,
                    node.line_of("metadata"),
                    "AtomicworkMcpServer: metadata.name is required".into(),
                ));
            };
            let mut problems: Vec<(usize, String)> = node
                .get("spec")
                .map(crate::k8s::spec_check::unknown_fields)
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.line, f.to_string()))
                .collect();
            let typed = serde_saphyr::from_str::<AtomicworkMcpServer>(doc);
            if let Err(e) = &typed {
                problems.push(yaml_problem("AtomicworkMcpServer: ", e));
            }
            match typed {
                Ok(mut server) if problems.is_empty() => {
                    server
                        .metadata
                        .namespace
                        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string());
                    Ok(Parsed::Server(Box::new(server), node))
                }
                _ => Err(Failure { identity, problems }),
            }
        }
        ("v1", "Secret") => {
            let secret: K8sSecret = serde_saphyr::from_str(doc).map_err(|e| {
                let (line, message) = yaml_problem("Secret: ", &e);
                Failure::one(Identity::Other, line, message)
            })?;
            let name = secret.metadata.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(Failure::one(
                    Identity::Other,
                    node.line_of("metadata"),
                    "Secret: metadata.name is required".into(),
                ));
            }
            let ns = secret
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
            Ok(Parsed::Secret((ns, name), secret_data(&secret)))
        }
        ("", _) | (_, "") => Err(Failure::one(
            Identity::Unknown,
            0,
            "not a Kubernetes object: apiVersion and kind are required".into(),
        )),
        (api, "AtomicworkMcpServer") => Err(Failure::one(
            server_id().unwrap_or(Identity::Unknown),
            node.line_of("apiVersion"),
            format!("apiVersion {api:?} is not served; use mcp.atomicwork.dev/v1alpha1"),
        )),
        // Other kinds (Namespaces, Deployments, ...) may share the files; they are not ours.
        _ => Ok(Parsed::Other),
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
        assert!(
            m.errors[0]
                .to_string()
                .starts_with("mixed.yaml (document 2, line 10): AtomicworkMcpServer: "),
            "{}",
            m.errors[0]
        );
        assert_eq!(m.errors[1].document, 3);
        assert_eq!(m.errors[1].line, Some(12));
        assert!(!m.errors[1].message.contains("line"), "{}", m.errors[1]);
        // The broken server is known to exist; the document that is not YAML hides what
        // it defines.
        assert!(
            m.broken
                .contains_key(&ServerId::new(DEFAULT_NAMESPACE, "broken"))
        );
        assert_eq!(m.unidentified, 1);
    }

    const SERVER: &str = "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: typo, namespace: it-ops}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {name: api}\n";

    #[test]
    fn unknown_spec_fields_are_errors_with_file_document_and_line() {
        let text = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: api, namespace: it-ops}}\nstringData: {{apiKey: k}}\n---\n{SERVER}  metods: [read]\n  rateLimit: {{requestsPerMinute: 5, burts: 2}}\n"
        );
        let mut m = Manifests::default();
        parse_into(&text, "servers.yaml", &mut m);
        assert!(m.servers.is_empty(), "not served until fixed");
        let id = ServerId::new("it-ops", "typo");
        assert!(m.broken.contains_key(&id));
        let shown: Vec<String> = m.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "servers.yaml (document 2, line 13): spec.metods is not a field of AtomicworkMcpServer; did you mean spec.methods?",
                "servers.yaml (document 2, line 14): spec.rateLimit.burts is not a field of AtomicworkMcpServer; did you mean spec.rateLimit.burst?",
            ]
        );
        // Fixed, it loads.
        let mut m = Manifests::default();
        parse_into(
            &text.replace("metods", "methods").replace("burts", "burst"),
            "servers.yaml",
            &mut m,
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.servers.len(), 1);
        let origin = &m.origins[&id];
        assert_eq!(
            origin.place(Some("spec.rateLimit.burst")),
            "servers.yaml (document 2, line 14)"
        );
        assert_eq!(
            origin.line_of(Some("spec.tags")),
            9,
            "not written: the line of spec"
        );
    }

    #[test]
    fn lines_count_from_the_start_of_the_file() {
        let text = format!("# servers\n---\n{SERVER}---\n{SERVER}  toolExposure: sometimes\n");
        let mut m = Manifests::default();
        parse_into(&text, "f.yaml", &mut m);
        assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
        // Document 3 starts on line 11; its toolExposure is its 8th line.
        assert_eq!(m.errors[0].document, 3);
        assert_eq!(m.errors[0].line, Some(18), "{}", m.errors[0]);
        assert!(m.errors[0].message.contains("sometimes"), "{}", m.errors[0]);
        let twice = format!("{SERVER}---\n\n{SERVER}");
        let mut m = Manifests::default();
        parse_into(&twice, "g.yaml", &mut m);
        assert_eq!(
            m.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "g.yaml (document 2, line 12): AtomicworkMcpServer it-ops/typo is defined twice; the first definition is used"
            ]
        );
    }

    #[test]
    fn read_failures_are_kept_apart_from_bad_documents() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.yaml"), SERVER).expect("write");
        std::fs::write(dir.path().join("b.yaml"), [0xff, 0xfe, b'\n']).expect("write");
        let m = load(dir.path());
        assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
        assert_eq!(m.servers.len(), 1);
        assert_eq!(m.unidentified, 1, "not UTF-8: {:?}", m.errors);
        let emfile = |p: &Path| -> std::io::Result<String> {
            if p.ends_with("a.yaml") {
                Err(std::io::Error::from_raw_os_error(24))
            } else {
                std::fs::read_to_string(p)
            }
        };
        let m = load_with(dir.path(), &emfile);
        assert_eq!(m.unreadable.len(), 1, "{:?}", m.unreadable);
        assert!(
            m.unreadable[0].to_string().contains("a.yaml: cannot read"),
            "{}",
            m.unreadable[0]
        );
        let m = load(&dir.path().join("missing"));
        assert_eq!(m.unreadable.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_link_loops_are_reported_once_and_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("manifests");
        std::fs::create_dir_all(root.join("team")).expect("mkdir");
        std::fs::write(root.join("team/server.yaml"), SERVER).expect("write");
        std::os::unix::fs::symlink(".", root.join("self")).expect("link");
        std::os::unix::fs::symlink("..", root.join("team/up")).expect("link");
        // Another way into a directory already read is not a loop, and not read twice.
        std::os::unix::fs::symlink("team", root.join("alias")).expect("link");
        let m = load(&root);
        assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
        assert_eq!(m.servers.len(), 1);
        let shown: Vec<String> = m.errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown.iter().all(|e| e.contains("symbolic link loop")),
            "{shown:#?}"
        );
        assert!(shown.iter().any(|e| e.contains("self: ")), "{shown:#?}");
        assert!(shown.iter().any(|e| e.contains("up: ")), "{shown:#?}");
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
