//! The hand-written JSON string escaper the MCP answers are written with: results embed
//! the upstream's text once escaped, and escaping it eight bytes at a time keeps that
//! cheap. Tests hold it to serde_json's output byte for byte.

/// Appends `s` as a JSON string literal. Eight bytes are checked at a time for a quote, a
/// backslash or a control character, and the checks name exactly the bytes to escape, so
/// plain runs are copied whole and a word with escapes jumps from one to the next.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const LOWS: u64 = u64::from_le_bytes([0x7f; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    /// The high bit of each byte of `word` that equals `byte`, and of no other.
    fn equal(word: u64, byte: u8) -> u64 {
        let x = word ^ (ONES * u64::from(byte));
        !(((x & LOWS) + LOWS) | x) & HIGHS
    }
    /// The high bit of each byte of `word` below 0x20, and of no other: adding 0x60 to
    /// the low seven bits reaches the high bit from 0x20 up, and never carries further.
    fn control(word: u64) -> u64 {
        !((word & LOWS) + ONES * 0x60) & !word & HIGHS
    }
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let mut hits = control(word) | equal(word, b'"') | equal(word, b'\\');
        while hits != 0 {
            let j = i + (hits.trailing_zeros() / 8) as usize;
            out.extend_from_slice(&bytes[copied..j]);
            push_escape(out, bytes[j]);
            copied = j + 1;
            hits &= hits - 1;
        }
        i += 8;
    }
    for (j, &b) in bytes.iter().enumerate().skip(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            out.extend_from_slice(&bytes[copied..j]);
            push_escape(out, b);
            copied = j + 1;
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Appends the escape of one byte that needs one, as serde_json writes it.
fn push_escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, s);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    /// Every ASCII character and a few wider ones, at every offset within an eight-byte
    /// word and across word boundaries, escape exactly as serde_json escapes them.
    #[test]
    fn strings_escape_as_serde_json_escapes_them() {
        let specials: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '𝄞', '\u{7f}', '\u{2028}'])
            .collect();
        for c in specials {
            for pad in 0..17 {
                let s = format!("{}{c}{}{c}", "a".repeat(pad), "b".repeat(pad % 5));
                let expected = serde_json::to_string(&s).expect("serialises");
                assert_eq!(escaped(&s), expected, "{s:?}");
                let back: String = serde_json::from_str(&escaped(&s)).expect("valid JSON");
                assert_eq!(back, s);
            }
        }
    }

    #[test]
    fn generated_strings_round_trip() {
        // A fixed linear congruential sequence: the same strings every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let alphabet: Vec<char> = "ab \"\\/\n\t\r\u{0}\u{1f}é€{}[]:,".chars().collect();
        for _ in 0..2_000 {
            let len = (next() % 64) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[next() as usize % alphabet.len()])
                .collect();
            assert_eq!(
                escaped(&s),
                serde_json::to_string(&s).expect("serialises"),
                "{s:?}"
            );
        }
        assert_eq!(escaped(""), "\"\"");
    }
}
