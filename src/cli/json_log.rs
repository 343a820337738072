//! JSON log lines, written straight into the line buffer.
//!
//! The output is byte for byte that of `tracing_subscriber`'s JSON format (timestamp,
//! level, `fields` in the order recorded, target; each value as `tracing-serde` writes it),
//! without its generic serialiser, which costs several microseconds per line: the access
//! and audit lines of every request. An event inside a span, from outside this crate, or
//! with a floating-point field is handed to `tracing_subscriber`'s own formatter.

use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::registry::LookupSpan;

/// Events from these targets take the direct way.
const OWN_TARGET: &str = "atomicwork_mcp";

/// The JSON event format: the direct way where it applies, else `inner`.
pub(crate) struct FastJson<T = SystemTime, I = format::Format<Json, T>> {
    timer: T,
    inner: I,
}

impl FastJson<UtcClock> {
    /// The format of `tracing_subscriber::fmt().json()`.
    pub(crate) fn new() -> Self {
        FastJson::with_timer(UtcClock)
    }
}

/// The timestamps of `tracing_subscriber`'s `SystemTime` clock (UTC to the microsecond,
/// `2026-01-02T03:04:05.678901Z`), with the part up to the second worked out once a
/// second per thread rather than on every line.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UtcClock;

impl FormatTime for UtcClock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match std::time::SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) if write_stamp(w, since)? => Ok(()),
            // Before 1970 or after 9999: the original clock's own way.
            _ => SystemTime.format_time(w),
        }
    }
}

/// Writes the timestamp `since` the Unix epoch; `false` (nothing written) when its year
/// is out of four digits.
fn write_stamp(w: &mut impl fmt::Write, since: Duration) -> Result<bool, fmt::Error> {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = since.as_secs();
    let written = SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let Some(prefix) = to_the_second(secs) else {
                return Ok(false);
            };
            *cached = (secs, prefix);
        }
        w.write_str(&cached.1).map(|()| true)
    })?;
    if !written {
        return Ok(false);
    }
    let micros = since.subsec_micros();
    let mut digits = [b'0'; 8];
    digits[0] = b'.';
    let mut rest = micros;
    for d in digits[1..7].iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    digits[7] = b'Z';
    for &d in &digits {
        w.write_char(char::from(d))?;
    }
    Ok(true)
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second, in UTC; `None` past year 9999.
fn to_the_second(secs: u64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(i64::try_from(secs).ok()?).ok()?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if !(0..=9999).contains(&dt.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    ))
}

impl<T: FormatTime + Clone> FastJson<T> {
    /// The same with another clock (the tests use a fixed one).
    pub(crate) fn with_timer(timer: T) -> Self {
        FastJson {
            inner: format::format().json().with_timer(timer.clone()),
            timer,
        }
    }
}

impl<S, N, T, I> FormatEvent<S, N> for FastJson<T, I>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    T: FormatTime,
    I: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let own = meta.target().starts_with(OWN_TARGET);
        let in_span = event.parent().is_some() || ctx.lookup_current().is_some();
        if !own || in_span {
            return self.inner.format_event(ctx, writer, event);
        }
        LINE.with(|cell| {
            let Ok(mut line) = cell.try_borrow_mut() else {
                return self.inner.format_event(ctx, writer.by_ref(), event);
            };
            line.clear();
            line.push_str("{\"timestamp\":");
            let mut stamp = String::new();
            std::mem::swap(&mut stamp, &mut line.scratch);
            stamp.clear();
            let timed = self.timer.format_time(&mut Writer::new(&mut stamp));
            json_str(&mut line.text, &stamp);
            line.scratch = stamp;
            timed?;
            line.push_str(",\"level\":\"");
            line.push_str(level(meta.level()));
            line.push_str("\",\"fields\":{");
            let mut visitor = FieldWriter {
                line: &mut line,
                first: true,
                unsupported: false,
            };
            event.record(&mut visitor);
            if visitor.unsupported {
                return self.inner.format_event(ctx, writer.by_ref(), event);
            }
            line.push_str("},\"target\":");
            let Line { text, .. } = &mut *line;
            json_str(text, meta.target());
            text.push_str("}\n");
            writer.write_str(text)
        })
    }
}

/// The line being built and a scratch buffer, kept per thread.
#[derive(Default)]
struct Line {
    text: String,
    scratch: String,
}

impl Line {
    fn clear(&mut self) {
        self.text.clear();
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

thread_local! {
    static LINE: std::cell::RefCell<Line> = std::cell::RefCell::new(Line::default());
}

/// The level as `tracing-serde` writes it.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it.
fn json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    // Most values need no escape at all.
    if bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `n` in decimal.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Writes an event's fields as `"name":value` pairs.
struct FieldWriter<'a> {
    line: &'a mut Line,
    first: bool,
    /// A value this writer does not format as `tracing-serde` would (a float).
    unsupported: bool,
}

impl FieldWriter<'_> {
    fn key(&mut self, field: &Field) {
        if !self.first {
            self.line.text.push(',');
        }
        self.first = false;
        json_str(&mut self.line.text, field.name());
        self.line.text.push(':');
    }
}

impl Visit for FieldWriter<'_> {
    fn record_f64(&mut self, _field: &Field, _value: f64) {
        self.unsupported = true;
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        if value < 0 {
            self.line.text.push('-');
        }
        push_u64(&mut self.line.text, value.unsigned_abs());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        push_u64(&mut self.line.text, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line
            .text
            .push_str(if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_str(&mut self.line.text, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        let Line { text, scratch } = &mut *self.line;
        scratch.clear();
        if write!(scratch, "{value:?}").is_err() {
            self.unsupported = true;
            return;
        }
        json_str(text, scratch);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A clock that always says the same.
    #[derive(Clone)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-01-02T03:04:05.678901Z")
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    /// Events of every shape this crate logs, and some it does not.
    fn emit() {
        let shown = "a \"quoted\" \\ value\n\twith\u{1}control\u{7f} and ünïcödé ✓";
        let missing: Option<u16> = None;
        tracing::info!(
            target: "atomicwork_mcp::access",
            method = %http::Method::POST,
            path = %"/mcp/[token]",
            status = 200u16,
            latency_ms = 3u64,
            "request"
        );
        tracing::info!(
            target: "atomicwork_mcp::audit",
            server = %shown,
            tool = %"list_all_atomicwork_workspaces",
            outcome = "ok",
            upstream_status = Some(200u16),
            missing = missing,
            upstream_latency_ms = 12u64,
            attempts = 1u32,
            client = "",
            user = shown,
            negative = -5i64,
            most_negative = i64::MIN,
            largest = u64::MAX,
            zero = 0u64,
            flag = true,
            wide = u128::MAX,
            debugged = ?vec!["x", "y\"z"],
            "tool call"
        );
        tracing::warn!(target: "atomicwork_mcp::controller", error = %io::Error::other("boom \u{0}"), "message with {} args", 2);
        tracing::error!(target: "atomicwork_mcp::x", ratio = 0.5f64, "a float goes the other way");
        tracing::info!(target: "other_crate", n = 1u64, "not ours");
        let span = tracing::info_span!("outer", server = "s1");
        span.in_scope(|| {
            tracing::info!(target: "atomicwork_mcp::audit", tool = "t", "inside a span");
        });
        tracing::debug!(target: "atomicwork_mcp::access", "no fields but the message");
    }

    fn output_of(fast: bool) -> String {
        let sink = Sink::default();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(sink.clone())
            .json()
            .with_timer(Fixed);
        if fast {
            let subscriber = builder.event_format(FastJson::with_timer(Fixed)).finish();
            tracing::subscriber::with_default(subscriber, emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let bytes = sink.0.lock().expect("sink").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn lines_are_those_of_the_json_formatter() {
        let fast = output_of(true);
        let reference = output_of(false);
        assert_eq!(fast.lines().count(), 7, "{fast}");
        for (a, b) in fast.lines().zip(reference.lines()) {
            assert_eq!(a, b);
            serde_json::from_str::<serde_json::Value>(a).expect("each line is JSON");
        }
        assert_eq!(fast, reference);
    }

    /// Another clock, to tell which way a line took.
    #[derive(Clone)]
    struct Inner;

    impl FormatTime for Inner {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("inner")
        }
    }

    #[test]
    fn own_events_outside_spans_take_the_direct_way() {
        let sink = Sink::default();
        let format = FastJson {
            timer: Fixed,
            inner: format::format().json().with_timer(Inner),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(sink.clone())
            .json()
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf-8");
        let direct: Vec<&str> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                if v["timestamp"] == "inner" {
                    "inner"
                } else {
                    "direct"
                }
            })
            .collect();
        // access, audit, controller: direct; float, other crate, span: the formatter's.
        assert_eq!(
            direct,
            [
                "direct", "direct", "direct", "inner", "inner", "inner", "direct"
            ],
            "{text}"
        );
    }

    #[test]
    fn timestamps_are_utc_to_the_microsecond() {
        let stamp = |secs: u64, micros: u32| {
            let mut out = String::new();
            let since = Duration::from_secs(secs) + Duration::from_micros(u64::from(micros));
            assert!(write_stamp(&mut out, since).expect("written"));
            out
        };
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(stamp(951_782_400, 500_000), "2000-02-29T00:00:00.500000Z");
        assert_eq!(stamp(946_684_799, 999_999), "1999-12-31T23:59:59.999999Z");
        assert_eq!(stamp(1_780_000_000, 1), "2026-05-28T20:26:40.000001Z");
        // The same second again, from the cache, then the next one.
        assert_eq!(stamp(1_780_000_000, 42), "2026-05-28T20:26:40.000042Z");
        assert_eq!(stamp(1_798_761_599, 7), "2026-12-31T23:59:59.000007Z");
        assert_eq!(stamp(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        let mut out = String::new();
        assert!(!write_stamp(&mut out, Duration::from_secs(300_000_000_000)).expect("ok"));
        assert_eq!(out, "");
    }

    #[test]
    fn the_clock_agrees_with_the_tracing_clock() {
        for _ in 0..20 {
            let mut ours = String::new();
            let mut theirs = String::new();
            UtcClock
                .format_time(&mut Writer::new(&mut ours))
                .expect("ours");
            SystemTime
                .format_time(&mut Writer::new(&mut theirs))
                .expect("theirs");
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            // Read a moment apart, they may differ in the fraction, or across a second.
            if ours[..19] == theirs[..19] {
                assert_eq!(ours.as_bytes()[19], b'.');
                assert!(ours.ends_with('Z'));
                return;
            }
        }
        panic!("the two clocks never agreed to the second");
    }

    #[test]
    fn escaping_matches_serde_json() {
        let mut all = String::new();
        for c in (0u32..0x80).filter_map(char::from_u32) {
            all.push(c);
        }
        all.push_str("é✓\u{2028}\u{10ffff}");
        let mut out = String::new();
        json_str(&mut out, &all);
        assert_eq!(out, serde_json::to_string(&all).expect("serialises"));
    }
}
