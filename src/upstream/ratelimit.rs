//! Rate-limit headers, normalised: whatever style the upstream uses (`Retry-After`,
//! `X-RateLimit-*`, IETF `RateLimit-*`, the combined `RateLimit` field and
//! `RateLimit-Policy`) becomes one [`RateLimitInfo`] that the data plane passes on as
//! `ratelimit-*` and `retry-after` headers.

use http::HeaderMap;
use jiff::Timestamp;

/// Values at or above this are Unix timestamps in seconds rather than a delta (a delta of
/// 1e9 seconds would be over 30 years).
const EPOCH_SECONDS_FLOOR: f64 = 1e9;
/// Values at or above this are Unix timestamps in milliseconds.
const EPOCH_MILLIS_FLOOR: f64 = 1e12;

/// Normalised rate-limit state of the upstream, as seen on one response.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RateLimitInfo {
    /// Quota, with its window when known, e.g. `110;w=10` or `110`.
    pub(crate) limit: Option<String>,
    /// Requests left in the current window.
    pub(crate) remaining: Option<u64>,
    /// Seconds from now until the window resets.
    pub(crate) reset: Option<u64>,
    /// Seconds to wait before calling again.
    pub(crate) retry_after: Option<u64>,
}

impl RateLimitInfo {
    /// Reads every supported style; `None` when the response carries no rate-limit
    /// information. `now` turns dates and epoch timestamps into seconds from now.
    pub(crate) fn from_headers(h: &HeaderMap, now: Timestamp) -> Option<Self> {
        // Most answers carry none of these: one pass over the names they do carry.
        let any = h.keys().any(|name| {
            let name = name.as_str();
            name.contains("ratelimit") || name == "retry-after"
        });
        if !any {
            return None;
        }
        let mut quota = Quota::default();
        if let Some(v) = header(h, "ratelimit") {
            quota.merge(parse_params(first_item(v)), now);
        }
        if let Some(v) = header(h, "ratelimit-policy") {
            quota.merge(parse_params(first_item(v)), now);
        }
        for [limit, remaining, reset] in [
            ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
            [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ],
        ] {
            if let Some(p) = header(h, limit).map(|v| parse_params(first_item(v))) {
                quota.merge(p, now);
            }
            let remaining = header(h, remaining).and_then(parse_seconds);
            quota.remaining = quota.remaining.or(remaining);
            let reset = header(h, reset).and_then(|v| reset_seconds(v, now));
            quota.reset = quota.reset.or(reset);
        }
        let info = RateLimitInfo {
            limit: quota.limit.map(|n| match quota.window {
                Some(w) => format!("{n};w={w}"),
                None => n.to_string(),
            }),
            remaining: quota.remaining,
            reset: quota.reset,
            retry_after: header(h, "retry-after").and_then(|v| retry_after_seconds(v, now)),
        };
        (info != RateLimitInfo::default()).then_some(info)
    }

    /// [`RateLimitInfo::from_headers`] for a response with HTTP `status`. A 429 says the
    /// quota is used up, so when it names no reset, its `Retry-After` (delta seconds or an
    /// HTTP date) is when the quota resets.
    pub(crate) fn from_response(status: u16, h: &HeaderMap, now: Timestamp) -> Option<Self> {
        let mut info = Self::from_headers(h, now)?;
        if status == 429 && info.reset.is_none() {
            info.reset = info.retry_after;
        }
        Some(info)
    }

    /// The normalised response headers, for the fields that are known.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(l) = &self.limit {
            out.push(("ratelimit-limit", l.clone()));
        }
        if let Some(r) = self.remaining {
            out.push(("ratelimit-remaining", r.to_string()));
        }
        if let Some(r) = self.reset {
            out.push(("ratelimit-reset", r.to_string()));
        }
        if let Some(r) = self.retry_after {
            out.push(("retry-after", r.to_string()));
        }
        out
    }

    /// Seconds to wait before the next call: `Retry-After`, or the reset time when the
    /// quota is used up.
    pub(crate) fn wait_seconds(&self) -> Option<u64> {
        self.retry_after
            .or_else(|| (self.remaining == Some(0)).then_some(self.reset).flatten())
    }
}

#[derive(Default)]
struct Quota {
    limit: Option<u64>,
    window: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
}

impl Quota {
    /// Fills the fields still unknown from `key=value` parameters. A bare number is the
    /// limit (`RateLimit-Policy: 100;w=60`, `X-RateLimit-Limit: 100`).
    fn merge(&mut self, params: Vec<(String, String)>, now: Timestamp) {
        for (key, value) in params {
            match key.as_str() {
                "" | "limit" | "l" | "q" => self.limit = self.limit.or(parse_seconds(&value)),
                "w" | "window" => self.window = self.window.or(parse_seconds(&value)),
                "remaining" | "r" => self.remaining = self.remaining.or(parse_seconds(&value)),
                "reset" | "t" => self.reset = self.reset.or(reset_seconds(&value, now)),
                _ => {}
            }
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The policy in effect. A list of policies (`10, 50;w=60` or `"a";r=1, "b";r=2`) lists
/// it first; the combined style (`limit=100, remaining=50, reset=30`) is one policy whose
/// parameters are separated by commas, so it is kept whole.
fn first_item(v: &str) -> &str {
    let first = v.split(',').next().unwrap_or(v).trim();
    if first.starts_with('"') || first.starts_with(|c: char| c.is_ascii_digit()) {
        first
    } else {
        v
    }
}

/// `limit=100; remaining=5` / `"default";r=5;t=30` / `100;w=60` as lower-case
/// key/value pairs; a bare value gets the empty key and quoted names are skipped.
/// The combined `RateLimit` style separates its parameters with commas, so commas are
/// accepted as separators too.
fn parse_params(v: &str) -> Vec<(String, String)> {
    v.split([';', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('"'))
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ),
            None => (String::new(), p.to_string()),
        })
        .collect()
}

/// A non-negative number of seconds; fractions round up.
fn parse_seconds(v: &str) -> Option<u64> {
    let n: f64 = v.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| n.ceil() as u64)
}

/// A reset given as delta seconds, Unix seconds, Unix milliseconds or an HTTP date.
fn reset_seconds(v: &str, now: Timestamp) -> Option<u64> {
    let Ok(n) = v.trim().parse::<f64>() else {
        return http_date_seconds(v, now);
    };
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let now_ms = now.as_millisecond() as f64;
    let delta_ms = if n >= EPOCH_MILLIS_FLOOR {
        n - now_ms
    } else if n >= EPOCH_SECONDS_FLOOR {
        n * 1000.0 - now_ms
    } else {
        return Some(n.ceil() as u64);
    };
    Some((delta_ms.max(0.0) / 1000.0).ceil() as u64)
}

/// `Retry-After`: delta seconds or an HTTP date (a date in the past means now).
fn retry_after_seconds(v: &str, now: Timestamp) -> Option<u64> {
    parse_seconds(v).or_else(|| http_date_seconds(v, now))
}

fn http_date_seconds(v: &str, now: Timestamp) -> Option<u64> {
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v.trim())
        .ok()?;
    let ms = at
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .max(0);
    Some((ms as u64).div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        // 2025-01-01T00:00:00Z
        Timestamp::from_second(1_735_689_600).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn info(pairs: &[(&'static str, &str)]) -> Option<RateLimitInfo> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        RateLimitInfo::from_headers(&h, now())
    }

    #[test]
    fn no_headers_means_none() {
        assert_eq!(info(&[("content-type", "application/json")]), None);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let secs = info(&[("retry-after", "7")]).unwrap_or_default();
        assert_eq!(secs.retry_after, Some(7));
        let date = info(&[("retry-after", "Wed, 01 Jan 2025 00:01:30 GMT")]).unwrap_or_default();
        assert_eq!(date.retry_after, Some(90));
        let past = info(&[("retry-after", "Tue, 31 Dec 2024 23:00:00 GMT")]).unwrap_or_default();
        assert_eq!(past.retry_after, Some(0));
        assert_eq!(info(&[("retry-after", "soon")]), None);
    }

    fn response(status: u16, pairs: &[(&'static str, &str)]) -> Option<RateLimitInfo> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        RateLimitInfo::from_response(status, &h, now())
    }

    #[test]
    fn a_429_with_only_retry_after_resets_when_it_says() {
        let secs = response(429, &[("retry-after", "7")]).unwrap_or_default();
        assert_eq!((secs.reset, secs.retry_after), (Some(7), Some(7)));
        let date =
            response(429, &[("retry-after", "Wed, 01 Jan 2025 00:01:30 GMT")]).unwrap_or_default();
        assert_eq!((date.reset, date.retry_after), (Some(90), Some(90)));
        let headers: Vec<_> = date.headers().into_iter().map(|(k, _)| k).collect();
        assert_eq!(headers, ["ratelimit-reset", "retry-after"]);
    }

    #[test]
    fn a_reset_the_upstream_names_wins_and_other_statuses_derive_none() {
        let named =
            response(429, &[("retry-after", "7"), ("ratelimit-reset", "30")]).unwrap_or_default();
        assert_eq!((named.reset, named.retry_after), (Some(30), Some(7)));
        let busy = response(503, &[("retry-after", "7")]).unwrap_or_default();
        assert_eq!((busy.reset, busy.retry_after), (None, Some(7)));
        assert_eq!(response(429, &[]), None);
    }

    #[test]
    fn x_ratelimit_with_delta_reset() {
        let i = info(&[
            ("x-ratelimit-limit", "100"),
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset", "42"),
        ]);
        let expected = RateLimitInfo {
            limit: Some("100".into()),
            remaining: Some(3),
            reset: Some(42),
            retry_after: None,
        };
        assert_eq!(i, Some(expected));
    }

    #[test]
    fn x_ratelimit_reset_as_epoch_seconds_and_millis() {
        let secs = info(&[("x-ratelimit-reset", "1735689660")]).unwrap_or_default();
        assert_eq!(secs.reset, Some(60));
        let millis = info(&[("x-ratelimit-reset", "1735689630500")]).unwrap_or_default();
        assert_eq!(millis.reset, Some(31));
        let past = info(&[("x-ratelimit-reset", "1735689000")]).unwrap_or_default();
        assert_eq!(past.reset, Some(0));
    }

    #[test]
    fn ietf_separate_fields_with_policy() {
        let i = info(&[
            ("ratelimit-limit", "110"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "9"),
            ("ratelimit-policy", "110;w=10"),
        ])
        .unwrap_or_default();
        assert_eq!(i.limit.as_deref(), Some("110;w=10"));
        assert_eq!(i.remaining, Some(0));
        assert_eq!(i.reset, Some(9));
        assert_eq!(i.wait_seconds(), Some(9));
    }

    #[test]
    fn ietf_limit_list_takes_the_first_policy() {
        let i = info(&[("ratelimit-limit", "10, 10;w=1, 50;w=60")]).unwrap_or_default();
        assert_eq!(i.limit.as_deref(), Some("10"));
    }

    #[test]
    fn combined_field_with_policy() {
        let i = info(&[
            ("ratelimit", "limit=100, remaining=50, reset=30"),
            ("ratelimit-policy", "100;w=60"),
        ])
        .unwrap_or_default();
        let expected = RateLimitInfo {
            limit: Some("100;w=60".into()),
            remaining: Some(50),
            reset: Some(30),
            retry_after: None,
        };
        assert_eq!(i, expected);
    }

    #[test]
    fn structured_field_style() {
        let i = info(&[
            ("ratelimit", "\"default\";r=5;t=12"),
            ("ratelimit-policy", "\"default\";q=100;w=60"),
        ])
        .unwrap_or_default();
        assert_eq!(i.limit.as_deref(), Some("100;w=60"));
        assert_eq!((i.remaining, i.reset), (Some(5), Some(12)));
    }

    #[test]
    fn ietf_fields_win_over_x_fields() {
        let i = info(&[("ratelimit-remaining", "4"), ("x-ratelimit-remaining", "9")])
            .unwrap_or_default();
        assert_eq!(i.remaining, Some(4));
    }

    #[test]
    fn headers_lists_known_fields_only() {
        let i = RateLimitInfo {
            limit: Some("110;w=10".into()),
            remaining: None,
            reset: Some(3),
            retry_after: Some(3),
        };
        assert_eq!(
            i.headers(),
            vec![
                ("ratelimit-limit", "110;w=10".to_string()),
                ("ratelimit-reset", "3".to_string()),
                ("retry-after", "3".to_string()),
            ]
        );
    }

    #[test]
    fn wait_uses_reset_only_when_quota_is_used_up() {
        let i = RateLimitInfo {
            remaining: Some(2),
            reset: Some(5),
            ..Default::default()
        };
        assert_eq!(i.wait_seconds(), None);
    }
}
