//! `spec.methods`, `spec.tags` and `spec.tools` applied to the catalog: a pure function, so
//! the controller, local mode and `atomicwork-mcp tools` all compute the same tool set.

use std::collections::BTreeSet;

use super::{Catalog, MethodClass, Tool, ToolSetKind};
use std::sync::Arc;

/// The filter fields of a server spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    /// The built-in set the tools come from.
    pub set: ToolSetKind,
    /// `read`, `write`, `custom` or exact method names; `None` or empty = every method.
    pub methods: Option<Vec<String>>,
    /// Tags; a tool matches when any of its tags is listed. `None` or empty = every tag.
    pub tags: Option<Vec<String>>,
    /// Non-empty: only these tool names (after methods and tags).
    pub allow: Vec<String>,
    /// Tool names removed last.
    pub deny: Vec<String>,
}

/// A filter value that names nothing the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown method {value:?} in methods; valid values: {valid}")]
    UnknownMethod { value: String, valid: String },
    #[error("unknown tag {value:?} in tags; valid values: {valid}")]
    UnknownTag { value: String, valid: String },
    #[error(
        "unknown tool {value:?} in tools.{list}: the {set} tool set has no tool of that name; check the name with `atomicwork-mcp tools --tool-set {set}`"
    )]
    UnknownTool {
        value: String,
        list: &'static str,
        set: ToolSetKind,
    },
}

impl FilterError {
    /// The spec field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            FilterError::UnknownMethod { .. } => "spec.methods",
            FilterError::UnknownTag { .. } => "spec.tags",
            FilterError::UnknownTool { list: "allow", .. } => "spec.tools.allow",
            FilterError::UnknownTool { .. } => "spec.tools.deny",
        }
    }
}

/// The tools a server with this filter exposes, sorted by name. Unknown values are errors,
/// never silent non-matches, so a typo cannot quietly empty a server.
pub fn filter(catalog: &Catalog, f: &ToolFilter) -> Result<Vec<Arc<Tool>>, FilterError> {
    let methods = non_empty(&f.methods);
    let tags = non_empty(&f.tags);
    check_methods(catalog, f.set, methods)?;
    check_tags(catalog, f.set, tags)?;
    for (list, names) in [("allow", &f.allow), ("deny", &f.deny)] {
        if let Some(bad) = names.iter().find(|n| catalog.get_in(f.set, n).is_none()) {
            return Err(FilterError::UnknownTool {
                value: bad.clone(),
                list,
                set: f.set,
            });
        }
    }
    let mut out: Vec<Arc<Tool>> = catalog
        .tools_of(f.set)
        .iter()
        .filter(|t| methods.is_none_or(|m| method_matches(t, m)))
        .filter(|t| tags.is_none_or(|tg| t.source.tags.iter().any(|x| tg.contains(x))))
        .filter(|t| f.allow.is_empty() || f.allow.iter().any(|a| a == t.name()))
        .filter(|t| !f.deny.iter().any(|d| d == t.name()))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(out)
}

fn non_empty(v: &Option<Vec<String>>) -> Option<&[String]> {
    v.as_deref().filter(|v| !v.is_empty())
}

fn method_matches(tool: &Tool, wanted: &[String]) -> bool {
    wanted.iter().any(|w| match w.as_str() {
        "read" => tool.method_class() == MethodClass::Read,
        "write" => tool.method_class() == MethodClass::Write,
        "custom" => tool.method_class() == MethodClass::Custom,
        exact => tool.source.method == exact,
    })
}

fn check_methods(
    catalog: &Catalog,
    set: ToolSetKind,
    methods: Option<&[String]>,
) -> Result<(), FilterError> {
    let known = catalog.methods(set);
    for m in methods.unwrap_or_default() {
        if !matches!(m.as_str(), "read" | "write" | "custom") && !known.contains(m.as_str()) {
            let mut valid: BTreeSet<&str> = ["read", "write", "custom"].into_iter().collect();
            valid.extend(known.iter().copied());
            return Err(FilterError::UnknownMethod {
                value: m.clone(),
                valid: valid.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}

fn check_tags(
    catalog: &Catalog,
    set: ToolSetKind,
    tags: Option<&[String]>,
) -> Result<(), FilterError> {
    let known = catalog.tags(set);
    for t in tags.unwrap_or_default() {
        if !known.contains(t.as_str()) {
            return Err(FilterError::UnknownTag {
                value: t.clone(),
                valid: known.iter().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}
