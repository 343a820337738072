//! The standard `OTEL_*` environment variables this program reads for its traces, parsed
//! once at start. A variable with a value that cannot be used stops the start with a
//! message naming it, rather than quietly tracing something else than was asked for.
//!
//! The OTLP exporter reads its own variables (`OTEL_EXPORTER_OTLP_*`: endpoint, headers,
//! timeout, compression, certificate) as the official exporter documents them; what is
//! parsed here is whether tracing is on at all, the protocol, the sampler, the resource
//! and the export queue.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;

/// The service name spans carry unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names another.
pub(crate) const DEFAULT_SERVICE_NAME: &str = "atomicwork-mcp";

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`, the standard's default).
    HttpProtobuf,
    /// OTLP over gRPC (`grpc`).
    Grpc,
}

impl Protocol {
    /// The `OTEL_EXPORTER_OTLP_PROTOCOL` value that selects it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// Everything tracing needs from the environment.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) protocol: Protocol,
    pub(crate) sampler: Sampler,
    pub(crate) resource: Vec<KeyValue>,
    pub(crate) queue: QueueSettings,
}

/// The export queue (`OTEL_BSP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueSettings {
    /// Spans waiting for export; a span ended while the queue is full is dropped and
    /// counted.
    pub(crate) max_queue: usize,
    /// The longest a span waits for its batch to fill.
    pub(crate) schedule_delay: Duration,
    /// Spans per export request.
    pub(crate) max_batch: usize,
    /// The longest one export may take; a slower one is given up and its spans counted
    /// as dropped.
    pub(crate) export_timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_queue: 2048,
            schedule_delay: Duration::from_millis(5000),
            max_batch: 512,
            export_timeout: Duration::from_millis(30_000),
        }
    }
}

/// A variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {problem}")]
pub struct SettingsError {
    variable: &'static str,
    value: String,
    problem: String,
}

fn bad(variable: &'static str, value: &str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        variable,
        value: value.to_string(),
        problem: problem.into(),
    }
}

impl Settings {
    /// Reads the settings through `var` (the process environment in the program, a map
    /// in tests). `Ok(None)` when tracing is off: no OTLP endpoint is set, or
    /// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`.
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, SettingsError> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = var("OTEL_SDK_DISABLED") {
            match v.to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" => {}
                _ => return Err(bad("OTEL_SDK_DISABLED", &v, "use true or false")),
            }
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(bad(
                    "OTEL_TRACES_EXPORTER",
                    other,
                    "this program exports traces over OTLP only; use otlp or none",
                ));
            }
        }
        if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
            && var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v))
            .or_else(|| {
                var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v))
            }) {
            None => Protocol::HttpProtobuf,
            Some((_, v)) if v == "http/protobuf" => Protocol::HttpProtobuf,
            Some((_, v)) if v == "grpc" => Protocol::Grpc,
            Some((name, v)) => {
                return Err(bad(
                    name,
                    &v,
                    "supported protocols are http/protobuf and grpc",
                ));
            }
        };
        Ok(Some(Settings {
            protocol,
            sampler: sampler(var("OTEL_TRACES_SAMPLER"), var("OTEL_TRACES_SAMPLER_ARG"))?,
            resource: resource(
                var("OTEL_SERVICE_NAME"),
                var("OTEL_RESOURCE_ATTRIBUTES").as_deref(),
            )?,
            queue: queue(&var)?,
        }))
    }
}

/// `OTEL_TRACES_SAMPLER` and its argument; the default is `parentbased_always_on`.
fn sampler(name: Option<String>, arg: Option<String>) -> Result<Sampler, SettingsError> {
    let ratio = || -> Result<f64, SettingsError> {
        match &arg {
            None => Ok(1.0),
            Some(a) => a
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    bad(
                        "OTEL_TRACES_SAMPLER_ARG",
                        a,
                        "a sampling ratio is a number from 0 to 1",
                    )
                }),
        }
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.as_deref() {
        None | Some("parentbased_always_on") => parent_based(Sampler::AlwaysOn),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_traceidratio") => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
        Some(other) => {
            return Err(bad(
                "OTEL_TRACES_SAMPLER",
                other,
                "use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

/// The resource: `service.name` (from `OTEL_SERVICE_NAME`, else from
/// `OTEL_RESOURCE_ATTRIBUTES`, else this program's name), `service.version`, and every
/// attribute of `OTEL_RESOURCE_ATTRIBUTES` (`key=value` pairs separated by commas, values
/// percent-encoded).
fn resource(
    service_name: Option<String>,
    attributes: Option<&str>,
) -> Result<Vec<KeyValue>, SettingsError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in attributes.unwrap_or_default().split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(bad(
                "OTEL_RESOURCE_ATTRIBUTES",
                attributes.unwrap_or_default(),
                format!("{item:?} is not key=value"),
            ));
        };
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| {
                bad(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    attributes.unwrap_or_default(),
                    format!("the value of {} is not UTF-8 once decoded", key.trim()),
                )
            })?;
        pairs.retain(|(k, _)| k != key.trim());
        pairs.push((key.trim().to_string(), value.into_owned()));
    }
    let name = service_name
        .or_else(|| {
            pairs
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    pairs.retain(|(k, _)| k != "service.name");
    if !pairs.iter().any(|(k, _)| k == "service.version") {
        pairs.push((
            "service.version".into(),
            env!("CARGO_PKG_VERSION").to_string(),
        ));
    }
    let mut out = vec![KeyValue::new("service.name", name)];
    out.extend(pairs.into_iter().map(|(k, v)| KeyValue::new(k, v)));
    Ok(out)
}

/// `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
/// and `OTEL_BSP_EXPORT_TIMEOUT` (ms).
fn queue(var: &impl Fn(&str) -> Option<String>) -> Result<QueueSettings, SettingsError> {
    let number = |name: &'static str, default: u64| -> Result<u64, SettingsError> {
        match var(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(name, &v, "use a whole number above 0")),
        }
    };
    let defaults = QueueSettings::default();
    let max_queue = number("OTEL_BSP_MAX_QUEUE_SIZE", defaults.max_queue as u64)? as usize;
    let max_batch = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", defaults.max_batch as u64)? as usize;
    Ok(QueueSettings {
        max_queue,
        // A batch is never larger than the queue, as the standard says.
        max_batch: max_batch.min(max_queue),
        schedule_delay: Duration::from_millis(number(
            "OTEL_BSP_SCHEDULE_DELAY",
            defaults.schedule_delay.as_millis() as u64,
        )?),
        export_timeout: Duration::from_millis(number(
            "OTEL_BSP_EXPORT_TIMEOUT",
            defaults.export_timeout.as_millis() as u64,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<Settings>, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|name| map.get(name).cloned())
    }

    fn on(extra: &[(&str, &str)]) -> Settings {
        let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")];
        vars.extend_from_slice(extra);
        parse(&vars).expect("valid").expect("on")
    }

    fn attribute(s: &Settings, key: &str) -> Option<String> {
        s.resource
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    #[test]
    fn tracing_is_off_without_an_endpoint_or_when_disabled() {
        assert!(parse(&[]).expect("valid").is_none());
        assert!(
            parse(&[("OTEL_SERVICE_NAME", "x")])
                .expect("valid")
                .is_none()
        );
        assert!(
            parse(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])
                .expect("valid")
                .is_none()
        );
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off];
            assert!(parse(&vars).expect("valid").is_none(), "{off:?}");
        }
        assert!(
            parse(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )])
            .expect("valid")
            .is_some()
        );
    }

    #[test]
    fn the_protocol_defaults_to_http_protobuf_and_the_signal_variable_wins() {
        assert_eq!(on(&[]).protocol, Protocol::HttpProtobuf);
        assert_eq!(
            on(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).protocol,
            Protocol::Grpc
        );
        assert_eq!(
            on(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
            ])
            .protocol,
            Protocol::HttpProtobuf
        );
    }

    #[test]
    fn unusable_values_are_refused_with_the_variable_named() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team"),
        ] {
            let e = parse(&[endpoint, (var, value)]).expect_err(var);
            assert!(e.to_string().starts_with(var), "{e}");
        }
        let e = parse(&[
            endpoint,
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ])
        .expect_err("ratio above 1");
        assert!(e.to_string().contains("OTEL_TRACES_SAMPLER_ARG"), "{e}");
    }

    #[test]
    fn samplers_follow_the_standard_names() {
        let s = |name: &str, arg: Option<&str>| {
            let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
            if let Some(a) = arg {
                vars.push(("OTEL_TRACES_SAMPLER_ARG", a));
            }
            format!("{:?}", on(&vars).sampler)
        };
        assert_eq!(
            format!("{:?}", on(&[]).sampler),
            s("parentbased_always_on", None)
        );
        assert!(s("always_off", None).contains("AlwaysOff"));
        assert!(s("traceidratio", Some("0.25")).contains("0.25"));
        let parent = s("parentbased_traceidratio", Some("0.5"));
        assert!(
            parent.contains("ParentBased") && parent.contains("0.5"),
            "{parent}"
        );
    }

    #[test]
    fn the_resource_names_the_service_and_keeps_given_attributes() {
        let s = on(&[]);
        assert_eq!(
            attribute(&s, "service.name").as_deref(),
            Some(DEFAULT_SERVICE_NAME)
        );
        assert_eq!(
            attribute(&s, "service.version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
        let s = on(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs, deployment.environment=prod%20eu,k8s.cluster.name=c1",
        )]);
        assert_eq!(attribute(&s, "service.name").as_deref(), Some("from-attrs"));
        assert_eq!(
            attribute(&s, "deployment.environment").as_deref(),
            Some("prod eu")
        );
        assert_eq!(attribute(&s, "k8s.cluster.name").as_deref(), Some("c1"));
        let s = on(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "from-name"),
        ]);
        assert_eq!(attribute(&s, "service.name").as_deref(), Some("from-name"));
        assert_eq!(
            s.resource
                .iter()
                .filter(|kv| kv.key.as_str() == "service.name")
                .count(),
            1
        );
    }

    #[test]
    fn the_queue_reads_the_batch_variables_and_keeps_a_batch_within_the_queue() {
        assert_eq!(on(&[]).queue, QueueSettings::default());
        let q = on(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "700"),
        ])
        .queue;
        assert_eq!(q.max_queue, 8);
        assert_eq!(q.max_batch, 8);
        assert_eq!(q.schedule_delay, Duration::from_millis(50));
        assert_eq!(q.export_timeout, Duration::from_millis(700));
    }
}
