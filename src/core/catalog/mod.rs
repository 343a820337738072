//! The Atomicwork tool catalog: what each MCP tool is called, what it does, and which REST
//! call it becomes.
//!
//! The catalog is data (`atomicwork.yaml`, compiled in) so that a deployment can correct an
//! inferred path or add a tool with an override file instead of a rebuild. Everything the
//! data plane needs per tool (input schema, annotations, compiled argument validator and the
//! pre-serialised `tools/list` entry) is computed once here and shared by every server.

mod arguments;
mod filter;
pub mod generate;
pub mod meta_tools;
mod overrides;
mod schema;

pub(crate) use arguments::invalid_arguments_text;
pub(crate) use arguments::problem_text;
pub use filter::{FilterError, ToolFilter, filter};
pub use overrides::{OverrideError, ToolOverride, ToolOverrides};

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::oauth::Classes;
use serde_json::{Map, Value};

/// The built-in catalog source.
const BUILTIN: &str = include_str!("atomicwork.yaml");

/// Which of the built-in tool sets a server draws its tools from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolSetKind {
    /// The hand-written catalog (`atomicwork.yaml`).
    #[default]
    Curated,
    /// One tool per operation of Atomicwork's published API, generated from it
    /// (`complete/tools.json`).
    Complete,
}

impl ToolSetKind {
    /// The name used in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolSetKind::Curated => "curated",
            ToolSetKind::Complete => "complete",
        }
    }

    /// Whether this is the default set (so records and manifests can leave it out).
    pub fn is_curated(&self) -> bool {
        *self == ToolSetKind::Curated
    }
}

impl fmt::Display for ToolSetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Name of the argument that selects the Atomicwork workspace for a call.
pub(crate) const WORKSPACE_ARG: &str = "workspace_id";

/// Errors loading or overriding a catalog. Each names the tool and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {source_name}: not valid YAML for a catalog: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("catalog {source_name}: cannot read: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("catalog tool {tool:?}, field {field}: {message}")]
    Invalid {
        tool: String,
        field: String,
        message: String,
    },
}

impl CatalogError {
    fn invalid(tool: &str, field: &str, message: impl Into<String>) -> Self {
        CatalogError::Invalid {
            tool: tool.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// HTTP verb of the upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BodyEncoding {
    /// No body.
    #[default]
    None,
    /// A JSON object built from the `in: body` arguments.
    Json,
    /// The bare JSON array given as the `body` argument (Atomicwork's filter lists).
    Array,
    /// multipart/form-data: `in: body` arguments as fields, `in: file` arguments as file parts.
    Multipart,
}

/// Where an argument goes in the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
    Body,
    /// A multipart file part.
    File,
    /// Only the `X-Workspace-Id` header (the workspace argument of tools without one elsewhere).
    Header,
}

/// A schema supplied by the catalog loader instead of written out per tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// Atomicwork's filter list: `[{attribute, operator, values: [{value}]}]`.
    Filters,
    /// Exactly one file object `{filename, content_type, content_base64}`.
    File,
    /// One or more file objects.
    Files,
}

/// One tool argument as written in the catalog file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamDef {
    pub(crate) name: String,
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ParamKind>,
    /// For `kind: filters`: the filter operators the endpoint accepts, as Atomicwork
    /// publishes them for it (the `operator` enum of the argument's schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) operators: Option<Vec<String>>,
}

/// MCP tool annotations; unset fields are derived from the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AnnotationOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) read_only_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) destructive_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotent_hint: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) open_world_hint: Option<bool>,
}

/// A tool exactly as written in a catalog file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolSource {
    pub(crate) name: String,
    pub title: String,
    pub description: String,
    pub method: String,
    pub(crate) tags: Vec<String>,
    pub http: HttpMethod,
    pub path: String,
    #[serde(default)]
    pub(crate) body: BodyEncoding,
    #[serde(default)]
    pub(crate) page_default: bool,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) fixed_query: Map<String, Value>,
    #[serde(default)]
    pub(crate) annotations: AnnotationOverrides,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) required_one_of: Vec<Vec<String>>,
    #[serde(default)]
    pub(crate) additional_body: bool,
    /// Body arguments whose value is also sent as a query parameter of the same name
    /// (the API names one value in both places).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) query_also: Vec<String>,
    #[serde(default)]
    pub(crate) params: Vec<ParamDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    tools: Vec<ToolSource>,
}

/// An override entry: every field but the name is optional. For a known tool the given
/// fields replace the built-in ones; an unknown name adds a tool and must be complete.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ToolPatch {
    pub(crate) name: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) http: Option<HttpMethod>,
    pub(crate) path: Option<String>,
    pub(crate) body: Option<BodyEncoding>,
    pub(crate) page_default: Option<bool>,
    pub(crate) fixed_query: Option<Map<String, Value>>,
    pub(crate) annotations: Option<AnnotationOverrides>,
    pub(crate) required_one_of: Option<Vec<Vec<String>>>,
    pub(crate) additional_body: Option<bool>,
    pub(crate) params: Option<Vec<ParamDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    tools: Vec<ToolPatch>,
}

/// Effective MCP annotations of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    pub read_only_hint: bool,
    pub destructive_hint: bool,
    pub idempotent_hint: bool,
    pub open_world_hint: bool,
}

/// A tool ready to serve: source data plus everything derived from it.
pub struct Tool {
    pub source: ToolSource,
    pub annotations: Annotations,
    /// The MCP `inputSchema` (an object schema).
    pub input_schema: Value,
    /// The tool's `tools/list` entry, serialised once.
    pub(crate) listing: Box<RawValue>,
    /// Checks arguments against the full input schema (fixed arguments included).
    validator: Arc<jsonschema::Validator>,
    /// For a tool a server shapes (`spec.toolOverrides`): its catalog name and what it
    /// does to the arguments of a call.
    shaping: Option<Arc<overrides::Shaping>>,
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.source.name)
            .finish()
    }
}

impl Tool {
    pub fn name(&self) -> &str {
        &self.source.name
    }

    /// The `read`/`write`/`custom` bucket of the tool's method.
    pub(crate) fn method_class(&self) -> MethodClass {
        MethodClass::of(&self.source.method)
    }

    pub fn is_read(&self) -> bool {
        self.method_class() == MethodClass::Read
    }

    /// Fills the arguments a server's override gives defaults for and sets its fixed
    /// ones; nothing for a tool no override shapes.
    pub fn shape_args(&self, args: &mut Map<String, Value>) {
        if let Some(shaping) = &self.shaping {
            shaping.apply(args);
        }
    }

    /// The tool's name in the catalog (the name clients see may be an override's).
    pub fn catalog_name(&self) -> &str {
        self.shaping
            .as_ref()
            .map_or(self.name(), |s| s.catalog_name.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.source.params.iter().find(|p| p.name == name)
    }

    /// Checks arguments against the input schema. Each message names the argument at fault
    /// and, for dependent arguments, the combinations that are accepted; unknown arguments
    /// are listed a few at a time with the arguments the tool takes.
    pub fn validate(&self, args: &Map<String, Value>) -> Result<(), Vec<String>> {
        self.validate_value(&Value::Object(args.clone()))
    }

    /// [`Tool::validate`] for arguments already held as a JSON object, without a copy.
    pub(crate) fn validate_value(&self, instance: &Value) -> Result<(), Vec<String>> {
        let empty = Map::new();
        let args = instance.as_object().unwrap_or(&empty);
        let mut problems = Vec::new();
        if !self.source.required_one_of.is_empty()
            && !self
                .source
                .required_one_of
                .iter()
                .any(|set| set.iter().all(|name| present(args, name)))
        {
            let options: Vec<String> = self
                .source
                .required_one_of
                .iter()
                .map(|set| set.join(" + "))
                .collect();
            problems.push(format!(
                "{} needs one of these argument sets: {}",
                self.source.name,
                options.join("; or ")
            ));
        }
        let accepted: Vec<&str> = self.source.params.iter().map(|p| p.name.as_str()).collect();
        for error in self.validator.iter_errors(instance) {
            if matches!(
                error.kind(),
                jsonschema::error::ValidationErrorKind::AnyOf { .. }
            ) && !problems.is_empty()
            {
                continue;
            }
            problems.push(problem_text(&error, &accepted));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn present(args: &Map<String, Value>, name: &str) -> bool {
    match args.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// The method buckets of `spec.methods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodClass {
    /// `list` and `get`.
    Read,
    /// `create`, `update` and `delete`.
    Write,
    /// Every other method, e.g. `partial_update`.
    Custom,
}

impl MethodClass {
    /// The bucket's name in `spec.methods`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MethodClass::Read => "read",
            MethodClass::Write => "write",
            MethodClass::Custom => "custom",
        }
    }

    pub(crate) fn of(method: &str) -> Self {
        match method {
            "list" | "get" => MethodClass::Read,
            "create" | "update" | "delete" => MethodClass::Write,
            _ => MethodClass::Custom,
        }
    }
}

/// The tools of one tool set, by name, in a stable order.
#[derive(Default)]
struct Section {
    /// The tools, in the order of their source.
    tools: Vec<Arc<Tool>>,
    /// Index into `tools` by tool name.
    by_name: HashMap<String, usize>,
}

impl Section {
    /// Builds a section from tool sources, checking each one.
    fn build(sources: Vec<ToolSource>) -> Result<Self, CatalogError> {
        let mut tools = Vec::with_capacity(sources.len());
        let mut by_name = HashMap::new();
        for source in sources {
            let name = source.name.clone();
            let tool = schema::build_tool(source)?;
            if by_name.insert(name.clone(), tools.len()).is_some() {
                return Err(CatalogError::invalid(&name, "name", "appears twice"));
            }
            tools.push(Arc::new(tool));
        }
        Ok(Section { tools, by_name })
    }
}

/// The whole catalog: the curated and the complete tool set, each by name in a stable
/// order, plus interned tool sets.
pub struct Catalog {
    curated: Section,
    complete: Section,
    sets: Mutex<HashMap<SetKey, std::sync::Weak<ToolSet>>>,
}

/// A tool set's key among the interned ones: the set it draws from and its tools'
/// indexes there.
type SetKey = (ToolSetKind, Vec<usize>);

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("tools", &self.curated.tools.len())
            .field("complete", &self.complete.tools.len())
            .finish()
    }
}

impl Catalog {
    /// The compiled-in catalog: both tool sets.
    pub fn builtin() -> Result<Self, CatalogError> {
        Self::with_sets(parse_file(BUILTIN, "built-in")?, parse_complete()?)
    }

    /// The built-in catalog with an override file applied.
    pub(crate) fn with_overrides_file(path: &Path) -> Result<Self, CatalogError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Read {
            source_name: name.clone(),
            message: e.to_string(),
        })?;
        Self::with_overrides(&text, &name)
    }

    /// The built-in catalog with override YAML applied. A patch changes the tool of its
    /// name in whichever set has it; a tool no set has joins both.
    pub fn with_overrides(yaml: &str, source_name: &str) -> Result<Self, CatalogError> {
        let mut curated = parse_file(BUILTIN, "built-in")?;
        let mut complete = parse_complete()?;
        let overrides: OverrideFile =
            serde_saphyr::from_str(yaml).map_err(|e| CatalogError::Parse {
                source_name: source_name.to_string(),
                message: e.to_string(),
            })?;
        for patch in overrides.tools {
            let in_curated = curated.iter().any(|t| t.name == patch.name);
            let in_complete = complete.iter().any(|t| t.name == patch.name);
            if in_complete || !in_curated {
                apply_patch(&mut complete, patch.clone())?;
            }
            if in_curated || !in_complete {
                apply_patch(&mut curated, patch)?;
            }
        }
        Self::with_sets(curated, complete)
    }

    /// Builds a catalog whose curated set is these tool sources (and whose complete set
    /// is empty), checking each one.
    #[cfg(test)]
    pub(crate) fn from_sources(sources: Vec<ToolSource>) -> Result<Self, CatalogError> {
        Self::with_sets(sources, Vec::new())
    }

    /// Builds a catalog from the sources of both sets.
    fn with_sets(
        curated: Vec<ToolSource>,
        complete: Vec<ToolSource>,
    ) -> Result<Self, CatalogError> {
        Ok(Catalog {
            curated: Section::build(curated)?,
            complete: Section::build(complete)?,
            sets: Mutex::new(HashMap::new()),
        })
    }

    fn section(&self, kind: ToolSetKind) -> &Section {
        match kind {
            ToolSetKind::Curated => &self.curated,
            ToolSetKind::Complete => &self.complete,
        }
    }

    /// The curated set's tools.
    pub fn tools(&self) -> &[Arc<Tool>] {
        &self.curated.tools
    }

    /// The tools of one set, in name order for the complete set and file order for the
    /// curated one.
    pub fn tools_of(&self, kind: ToolSetKind) -> &[Arc<Tool>] {
        &self.section(kind).tools
    }

    /// A tool of the curated set.
    pub fn get(&self, name: &str) -> Option<&Arc<Tool>> {
        self.get_in(ToolSetKind::Curated, name)
    }

    /// A tool of one set.
    pub fn get_in(&self, kind: ToolSetKind, name: &str) -> Option<&Arc<Tool>> {
        let section = self.section(kind);
        section.by_name.get(name).map(|&i| &section.tools[i])
    }

    /// Number of tools in the curated set.
    pub fn len(&self) -> usize {
        self.curated.tools.len()
    }

    /// Whether the curated set is empty.
    pub fn is_empty(&self) -> bool {
        self.curated.tools.is_empty()
    }

    /// Every method name used by a tool of the set, sorted.
    pub(crate) fn methods(&self, kind: ToolSetKind) -> BTreeSet<&str> {
        self.tools_of(kind)
            .iter()
            .map(|t| t.source.method.as_str())
            .collect()
    }

    /// Every tag used by a tool of the set, sorted.
    pub(crate) fn tags(&self, kind: ToolSetKind) -> BTreeSet<&str> {
        self.tools_of(kind)
            .iter()
            .flat_map(|t| t.source.tags.iter().map(String::as_str))
            .collect()
    }

    /// The tool set of set `kind` for these tool names, shaped by a server's
    /// `toolOverrides`. Without overrides it is the shared set of [`Catalog::tool_set_of`].
    pub fn shaped_tool_set(
        &self,
        kind: ToolSetKind,
        names: &[String],
        overrides: &ToolOverrides,
    ) -> Result<Arc<ToolSet>, OverrideError> {
        let plain = self.tool_set_of(kind, names);
        if overrides.is_empty() {
            return Ok(plain);
        }
        overrides::shaped_set(kind, plain.tools.clone(), overrides).map(Arc::new)
    }

    /// The shared [`ToolSet`] of the curated set for these tool names.
    pub fn tool_set(&self, names: &[String]) -> Arc<ToolSet> {
        self.tool_set_of(ToolSetKind::Curated, names)
    }

    /// The shared [`ToolSet`] of set `kind` for these tool names. Servers with the same
    /// filter result share one set, so its listing is serialised once however many
    /// servers use it.
    pub fn tool_set_of(&self, kind: ToolSetKind, names: &[String]) -> Arc<ToolSet> {
        let section = self.section(kind);
        let mut indexes: Vec<usize> = names
            .iter()
            .filter_map(|n| section.by_name.get(n).copied())
            .collect();
        indexes.sort_by(|a, b| section.tools[*a].name().cmp(section.tools[*b].name()));
        indexes.dedup();
        let mut sets = match self.sets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (kind, indexes);
        if let Some(set) = sets.get(&key).and_then(std::sync::Weak::upgrade) {
            return set;
        }
        sets.retain(|_, weak| weak.strong_count() > 0);
        let set = Arc::new(ToolSet::of(
            kind,
            key.1.iter().map(|&i| section.tools[i].clone()).collect(),
        ));
        sets.insert(key, Arc::downgrade(&set));
        set
    }
}

/// A server's filtered tools, in name order, with its `tools/list` array serialised once.
pub struct ToolSet {
    kind: ToolSetKind,
    tools: Vec<Arc<Tool>>,
    /// The server overrides the tools were shaped by (empty for a shared set).
    overrides: ToolOverrides,
    listing: Box<RawValue>,
    discovery: std::sync::OnceLock<Box<RawValue>>,
    /// The classes of the tools in the set.
    classes: Classes,
    /// The set narrowed to each combination of classes, made at first use (for OAuth
    /// callers whose scopes allow only some classes).
    narrowed: [std::sync::OnceLock<Arc<ToolSet>>; Classes::COUNT],
}

impl fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|t| t.name()))
            .finish()
    }
}

impl ToolSet {
    /// A curated-set tool set of these tools.
    pub(crate) fn new(tools: Vec<Arc<Tool>>) -> Self {
        Self::of(ToolSetKind::Curated, tools)
    }

    /// A tool set of these tools, drawn from set `kind`.
    pub(crate) fn of(kind: ToolSetKind, tools: Vec<Arc<Tool>>) -> Self {
        let mut json = String::from("[");
        for (i, tool) in tools.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(tool.listing.get());
        }
        json.push(']');
        let listing = RawValue::from_string(json).unwrap_or_else(|_| empty_array());
        let classes = tools
            .iter()
            .fold(Classes::NONE, |c, t| c.with(t.method_class()));
        ToolSet {
            kind,
            tools,
            overrides: ToolOverrides::new(),
            listing,
            discovery: std::sync::OnceLock::new(),
            classes,
            narrowed: Default::default(),
        }
    }

    /// The classes of the tools in the set.
    pub(crate) fn classes(&self) -> Classes {
        self.classes
    }

    /// The tools of the set whose class is in `classes`, as a set of their own with its
    /// own listings; made once per combination.
    pub(crate) fn only(&self, classes: Classes) -> &Arc<ToolSet> {
        self.narrowed[classes.index()].get_or_init(|| {
            let mut set = ToolSet::of(
                self.kind,
                self.tools
                    .iter()
                    .filter(|t| classes.contains(t.method_class()))
                    .cloned()
                    .collect(),
            );
            set.overrides = self.overrides.clone();
            Arc::new(set)
        })
    }

    pub(crate) fn tools(&self) -> &[Arc<Tool>] {
        &self.tools
    }

    /// The built-in set the tools come from.
    pub fn kind(&self) -> ToolSetKind {
        self.kind
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Tool>> {
        self.tools
            .binary_search_by(|t| t.name().cmp(name))
            .ok()
            .map(|i| &self.tools[i])
    }

    /// The names clients see, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name().to_string()).collect()
    }

    /// The tools' catalog names, sorted: what a runtime record lists.
    pub(crate) fn catalog_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tools
            .iter()
            .map(|t| t.catalog_name().to_string())
            .collect();
        names.sort();
        names
    }

    /// The overrides the tools were shaped by.
    pub(crate) fn overrides(&self) -> &ToolOverrides {
        &self.overrides
    }

    pub(crate) fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The JSON array of `tools/list` entries.
    pub fn listing(&self) -> &RawValue {
        &self.listing
    }

    /// The `tools/list` array in discovery exposure: the three meta-tools.
    pub(crate) fn discovery_listing(&self) -> &RawValue {
        self.discovery.get_or_init(|| {
            serde_json::value::to_raw_value(&meta_tools::listing(self))
                .unwrap_or_else(|_| empty_array())
        })
    }
}

fn empty_array() -> Box<RawValue> {
    RawValue::from_string("[]".to_string()).unwrap_or_else(|_| unreachable!("[] is valid JSON"))
}

/// The complete set's committed catalog data.
fn parse_complete() -> Result<Vec<ToolSource>, CatalogError> {
    let file: CatalogFile =
        serde_json::from_str(generate::TOOLS_JSON).map_err(|e| CatalogError::Parse {
            source_name: "complete".to_string(),
            message: e.to_string(),
        })?;
    Ok(file.tools)
}

fn parse_file(text: &str, source_name: &str) -> Result<Vec<ToolSource>, CatalogError> {
    let file: CatalogFile = serde_saphyr::from_str(text).map_err(|e| CatalogError::Parse {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    Ok(file.tools)
}

fn apply_patch(sources: &mut Vec<ToolSource>, patch: ToolPatch) -> Result<(), CatalogError> {
    if let Some(existing) = sources.iter_mut().find(|t| t.name == patch.name) {
        let ToolPatch {
            name: _,
            title,
            description,
            method,
            tags,
            http,
            path,
            body,
            page_default,
            fixed_query,
            annotations,
            required_one_of,
            additional_body,
            params,
        } = patch;
        set(&mut existing.title, title);
        set(&mut existing.description, description);
        set(&mut existing.method, method);
        set(&mut existing.tags, tags);
        set(&mut existing.http, http);
        set(&mut existing.path, path);
        set(&mut existing.body, body);
        set(&mut existing.page_default, page_default);
        set(&mut existing.fixed_query, fixed_query);
        set(&mut existing.annotations, annotations);
        set(&mut existing.required_one_of, required_one_of);
        set(&mut existing.additional_body, additional_body);
        set(&mut existing.params, params);
        return Ok(());
    }
    let name = patch.name.clone();
    let missing = |field: &str| {
        CatalogError::invalid(
            &name,
            field,
            "is required for a tool that is not in the built-in catalog",
        )
    };
    sources.push(ToolSource {
        title: patch.title.ok_or_else(|| missing("title"))?,
        description: patch.description.ok_or_else(|| missing("description"))?,
        method: patch.method.ok_or_else(|| missing("method"))?,
        tags: patch.tags.ok_or_else(|| missing("tags"))?,
        http: patch.http.ok_or_else(|| missing("http"))?,
        path: patch.path.ok_or_else(|| missing("path"))?,
        body: patch.body.unwrap_or_default(),
        page_default: patch.page_default.unwrap_or(false),
        fixed_query: patch.fixed_query.unwrap_or_default(),
        annotations: patch.annotations.unwrap_or_default(),
        required_one_of: patch.required_one_of.unwrap_or_default(),
        additional_body: patch.additional_body.unwrap_or(false),
        query_also: Vec::new(),
        params: patch.params.unwrap_or_default(),
        name: patch.name,
    });
    Ok(())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_narrowed_to_classes_keeps_only_their_tools_and_lists_them() {
        let catalog = Catalog::builtin().expect("catalog");
        let names: Vec<String> = catalog
            .tools()
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        let set = catalog.tool_set(&names);
        assert_eq!(set.classes(), Classes::ALL);
        let reads = set.only(Classes::of(MethodClass::Read));
        assert!(!reads.is_empty());
        assert!(reads.tools().iter().all(|t| t.is_read()));
        assert_eq!(
            reads.len(),
            set.tools().iter().filter(|t| t.is_read()).count()
        );
        assert_eq!(reads.classes(), Classes::of(MethodClass::Read));
        let listed: Vec<Value> = serde_json::from_str(reads.listing().get()).expect("listing");
        assert_eq!(listed.len(), reads.len());
        assert!(
            listed
                .iter()
                .all(|t| t["annotations"]["readOnlyHint"] == true)
        );
        // Made once: the same set each time.
        assert!(Arc::ptr_eq(reads, set.only(Classes::of(MethodClass::Read))));
        let writes = set.only(Classes::of(MethodClass::Write).with(MethodClass::Custom));
        assert!(writes.tools().iter().all(|t| !t.is_read()));
        assert_eq!(writes.len() + reads.len(), set.len());
        assert!(set.only(Classes::NONE).is_empty());
    }
}
