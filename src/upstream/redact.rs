//! Keeping the API key out of what goes back to the client. An upstream answer may echo
//! the key (an error quoting the request headers, a debug endpoint); every such echo is
//! replaced by `[redacted]` before any text is cut to a limit, so a cut can never leave a
//! key minus its last characters, and a cut text that still ends with the start of the
//! key loses that start too.

use std::borrow::Cow;

use serde_json::Value;

/// What an echo of the key is replaced by.
pub(crate) const REDACTED: &str = "[redacted]";
/// API keys shorter than this are not searched for in results: a very short string would
/// match ordinary text and mangle it. It is also the shortest start of the key removed
/// from the end of a cut text.
pub(crate) const MIN_REDACTED_KEY_LEN: usize = 8;

/// The API key to remove from results, in the forms it can take in an answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Redactor<'a> {
    /// The key as sent; `None` when it is too short to search for.
    key: Option<&'a str>,
}

impl<'a> Redactor<'a> {
    /// A redactor for `key` (surrounding whitespace is not part of the key as sent).
    pub(crate) fn new(key: &'a str) -> Self {
        let key = key.trim();
        Redactor {
            key: (key.len() >= MIN_REDACTED_KEY_LEN).then_some(key),
        }
    }

    /// The forms the key takes in text: as sent, and as written inside a JSON string when
    /// that differs (a key with a quote, a backslash or a control character).
    fn forms(&self) -> impl Iterator<Item = Cow<'a, str>> {
        let key = self.key;
        let escaped = key.and_then(|k| {
            let quoted = serde_json::to_string(k).ok()?;
            let inner = quoted.get(1..quoted.len().saturating_sub(1))?.to_string();
            (inner != k).then_some(inner)
        });
        key.map(Cow::Borrowed)
            .into_iter()
            .chain(escaped.map(Cow::Owned))
    }

    /// True when `bytes` hold the key in any of its forms.
    pub(crate) fn found_in(&self, bytes: &[u8]) -> bool {
        self.forms()
            .any(|f| memchr::memmem::find(bytes, f.as_bytes()).is_some())
    }

    /// `text` with every occurrence of the key replaced.
    pub(crate) fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for form in self.forms() {
            if out.contains(form.as_ref()) {
                out = Cow::Owned(out.replace(form.as_ref(), REDACTED));
            }
        }
        out
    }

    /// Replaces every occurrence of the key in `s`, in place.
    pub(crate) fn string(&self, s: &mut String) {
        if let Cow::Owned(replaced) = self.text(s) {
            *s = replaced;
        }
    }

    /// Replaces the key in every string and object key of `v`; a number whose digits
    /// hold it becomes a string. True when anything was replaced.
    pub(crate) fn value(&self, v: &mut Value) -> bool {
        let Some(key) = self.key else {
            return false;
        };
        match v {
            Value::String(s) if s.contains(key) => {
                *s = s.replace(key, REDACTED);
                true
            }
            Value::Number(n) if n.to_string().contains(key) => {
                *v = Value::String(n.to_string().replace(key, REDACTED));
                true
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, i| self.value(i) | changed),
            Value::Object(map) => {
                let mut changed = false;
                if map.keys().any(|k| k.contains(key)) {
                    let old = std::mem::take(map);
                    for (k, val) in old {
                        map.insert(k.replace(key, REDACTED), val);
                    }
                    changed = true;
                }
                map.values_mut()
                    .fold(changed, |changed, i| self.value(i) | changed)
            }
            _ => false,
        }
    }

    /// Replaces the key in a text that may be JSON, whatever escapes spell it: first as
    /// written (and as JSON writes it), then, when the text has `\u` or `\/` escapes and
    /// is JSON, in the strings those escapes spell (the text is then written again).
    /// `None` when nothing was replaced (nothing is copied then). This is the one pass
    /// every tool result gets, so the result is clean however it was built.
    pub(crate) fn json_text(&self, text: &str) -> Option<String> {
        self.key?;
        let plain = self.text(text);
        if has_json_escape(plain.as_bytes())
            && let Ok(mut value) = serde_json::from_str::<Value>(&plain)
            && self.value(&mut value)
            && let Ok(written) = serde_json::to_string(&value)
        {
            return Some(written);
        }
        match plain {
            Cow::Owned(replaced) => Some(replaced),
            Cow::Borrowed(_) => None,
        }
    }

    /// For a text just cut to `max_chars` characters: a start of the key (in any of its
    /// forms) of at least [`MIN_REDACTED_KEY_LEN`] characters at its end is replaced by
    /// `[redacted]`, and the text stays within `max_chars`.
    pub(crate) fn cut_end(&self, text: &mut String, max_chars: usize) {
        let Some(len) = self.forms().find_map(|form| trailing_start(text, &form)) else {
            return;
        };
        text.truncate(text.len() - len);
        if max_chars < REDACTED.len() {
            return;
        }
        let room = max_chars - REDACTED.len();
        let kept = text.chars().count();
        if kept > room
            && let Some((at, _)) = text.char_indices().nth(room)
        {
            text.truncate(at);
        }
        text.push_str(REDACTED);
    }
}

/// A `\u` or `\/` escape anywhere in `bytes`: JSON text that spells a string differently
/// from how it reads.
pub(crate) fn has_json_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', bytes).any(|at| matches!(bytes.get(at + 1), Some(b'u' | b'/')))
}

/// The byte length of the longest start of `form`, at least [`MIN_REDACTED_KEY_LEN`]
/// bytes long, that `text` ends with.
fn trailing_start(text: &str, form: &str) -> Option<usize> {
    (MIN_REDACTED_KEY_LEN..=form.len())
        .rev()
        .filter(|&n| form.is_char_boundary(n))
        .find(|&n| text.ends_with(&form[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "awk-live-0123456789abcdef";

    #[test]
    fn short_keys_are_not_searched_for() {
        let r = Redactor::new("  short  ");
        assert_eq!(r.text("a short text"), "a short text");
        let mut v = json!({"short": "short"});
        assert!(!r.value(&mut v));
    }

    #[test]
    fn every_echo_is_replaced_in_text_and_values() {
        let r = Redactor::new(KEY);
        assert_eq!(
            r.text(&format!("{KEY} and {KEY}x")),
            "[redacted] and [redacted]x"
        );
        let mut v = json!({KEY: [format!("a{KEY}"), 1], "n": 2});
        assert!(r.value(&mut v));
        assert_eq!(v, json!({"[redacted]": ["a[redacted]", 1], "n": 2}));
        assert!(r.found_in(format!("..{KEY}..").as_bytes()));
        assert!(!r.found_in(&KEY.as_bytes()[..KEY.len() - 1]));
    }

    #[test]
    fn a_key_written_with_json_escapes_is_found_as_written() {
        let key = "awk\"quoted\\key-0123";
        let r = Redactor::new(key);
        let written = serde_json::to_string(&json!({"k": key})).unwrap_or_default();
        assert!(r.found_in(written.as_bytes()), "{written}");
        assert!(!r.text(&written).contains("quoted"), "{}", r.text(&written));
    }

    /// The key spelled with `\u` escapes (as some servers write every non-ASCII or even
    /// every character) is found in JSON text, and nothing else in the text changes.
    #[test]
    fn a_key_spelled_with_unicode_escapes_is_found_in_json_text() {
        let r = Redactor::new(KEY);
        let spelled: String = KEY
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let text = format!(r#"{{"echo":"{spelled}","url":"a\/b","n":1}}"#);
        assert!(
            !r.found_in(text.as_bytes()),
            "the plain search cannot see it"
        );
        assert_eq!(
            r.json_text(&text).as_deref(),
            Some(r#"{"echo":"[redacted]","n":1,"url":"a/b"}"#)
        );
        // Not JSON, or JSON without the key: left exactly as it was.
        for plain in [
            format!("{spelled} is not JSON"),
            r#"{"url":"a\/b"}"#.to_string(),
        ] {
            assert_eq!(r.json_text(&plain), None, "{plain}");
        }
    }

    #[test]
    fn a_cut_text_ending_with_the_start_of_the_key_loses_it() {
        let r = Redactor::new(KEY);
        for n in 0..=KEY.len() {
            let mut text = format!("{}{}", "x".repeat(40), &KEY[..n]);
            let max = text.chars().count();
            r.cut_end(&mut text, max);
            assert!(text.chars().count() <= max, "{n}: {text}");
            if n >= MIN_REDACTED_KEY_LEN {
                assert!(text.ends_with(REDACTED), "{n}: {text}");
                assert!(!text.contains(&KEY[..MIN_REDACTED_KEY_LEN]), "{n}: {text}");
            } else {
                assert_eq!(text, format!("{}{}", "x".repeat(40), &KEY[..n]));
            }
        }
    }

    #[test]
    fn the_marker_is_dropped_when_the_cap_has_no_room_for_it() {
        let r = Redactor::new(KEY);
        let mut text = KEY[..9].to_string();
        r.cut_end(&mut text, 9);
        assert_eq!(text, "");
    }
}
